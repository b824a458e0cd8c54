package ops

import (
	"fmt"

	"blipflow/model/cuda"
)

// GraphKey identifies a decode step's shape: its batch and the KV cache's
// capacity. A step of that shape reads its changing inputs (tokens,
// positions, key counts) from fixed device buffers written before each
// replay, so its kernels and their arguments never change.
type GraphKey struct {
	Batch, Capacity int
}

// Graphs captures one CUDA graph per decode shape on first use and replays
// it afterwards, so a step costs one launch instead of one per kernel.
type Graphs struct {
	b      *Backend
	graphs map[GraphKey]*captured
	// Captures and Replays count the graphs made and launched.
	Captures, Replays int
}

type captured struct {
	exec  cuda.GraphExec
	arena *arena
}

// NewGraphs returns an empty graph cache on b.
func (b *Backend) NewGraphs() *Graphs { return &Graphs{b: b, graphs: map[GraphKey]*captured{}} }

// Run replays the graph of key, capturing record's work first when there
// is none. Everything record allocates comes from an arena kept with the
// graph (freed by Drop), so replays find their buffers where the capture
// left them. Call inside Ctx.Do.
func (g *Graphs) Run(key GraphKey, record func() error) error {
	c, ok := g.graphs[key]
	if !ok {
		a := &arena{c: g.b.Ctx, owned: map[uintptr]bool{}}
		g.b.arena = a
		exec, err := g.b.Ctx.Capture(g.b.stream, record)
		g.b.arena = nil
		if err != nil {
			a.free()
			return fmt.Errorf("capturing the decode step of batch %d, capacity %d: %w", key.Batch, key.Capacity, err)
		}
		c = &captured{exec: exec, arena: a}
		g.graphs[key] = c
		g.Captures++
	} else {
		g.Replays++
	}
	return g.b.Ctx.Launch(c.exec, g.b.stream)
}

// Drop releases the graph of key (a batch shape no longer used).
func (g *Graphs) Drop(key GraphKey) {
	if c, ok := g.graphs[key]; ok {
		g.b.Ctx.DestroyGraph(c.exec)
		c.arena.free()
		delete(g.graphs, key)
	}
}

// Close releases every graph.
func (g *Graphs) Close() {
	for k := range g.graphs {
		g.Drop(k)
	}
}

// arena holds the buffers of one captured graph.
type arena struct {
	c     *cuda.Context
	bufs  []cuda.Buffer
	owned map[uintptr]bool
}

func (a *arena) alloc(n uint64) (cuda.Buffer, error) {
	buf, err := a.c.Alloc(n)
	if err != nil {
		return cuda.Buffer{}, err
	}
	a.bufs = append(a.bufs, buf)
	a.owned[buf.Ptr] = true
	return buf, nil
}

func (a *arena) owns(p uintptr) bool { return a != nil && a.owned[p] }

func (a *arena) free() {
	for _, buf := range a.bufs {
		a.c.Free(buf)
	}
	a.bufs, a.owned = nil, nil
}
