package blip2

import (
	"context"
	"fmt"

	G "gorgonia.org/gorgonia"

	"blipflow/model/nn"
)

// optLayersPerGraph is how many decoder layers one prefill graph runs.
var optLayersPerGraph = 2

// optDecoder is an OPT model mid-generation: the KV cache and, per row, the
// attention mask so far. It implements generate.Decoder.
type optDecoder struct {
	m     *Model
	o     *OPT
	cache *nn.KVCache
	mask  [][]int // per row, one entry per cached step
	count []int   // per row, number of unmasked steps (next position id)
	// steps holds the compiled decode-step graph of the current batch
	// size, re-run with new inputs on every step. When rows leave, the
	// graph of the smaller batch replaces it (a graph holds its last
	// run's values, so old ones are dropped).
	steps map[int]*optStep
}

// optStep is a compiled decode step for a batch size: its inputs are
// updated in place before each run.
type optStep struct {
	run                     *nn.Runner
	tokens, positions, kvAt []int     // [B,1], [B,1], [B]
	attn                    []float32 // [B,1,capacity]
	logits                  *G.Node
}

// prefillOPT runs the prompt through OPT: ids [B,T] (the <image> tokens
// standing for the queries) with mask [B,T], in a cache with room for
// capacity more steps of up to slots rows. It returns the decoder and the
// logits of the last position [B][V], or of every position when all is set.
func (m *Model) prefillOPT(ctx context.Context, img *ImageOutputs, ids, mask [][]int, capacity, slots int, all bool) (*optDecoder, [][]float32, error) {
	o := m.LM.(*OPT)
	g := nn.NewGraph(m.Ops)
	x, ids, mask, err := m.promptEmbeddings(g, img, ids, mask)
	if err != nil {
		return nil, nil, err
	}
	b, t := len(ids), len(ids[0])
	if t+capacity > o.cfg.MaxPositionEmbeddings {
		return nil, nil, fmt.Errorf("blip2: prompt of %d tokens plus %d new ones exceeds OPT's %d positions", t, capacity, o.cfg.MaxPositionEmbeddings)
	}
	d := &optDecoder{m: m, o: o, cache: m.Ops.NewKVCache(len(o.layers), b, slots, o.dim, t+capacity), count: make([]int, b), steps: map[int]*optStep{}}
	kvAt, err := d.cache.Reserve(t)
	if err != nil {
		return nil, nil, err
	}
	positions := make([]int, 0, b*t)
	attn := make([]float32, b*t*t)
	for r := 0; r < b; r++ {
		d.mask = append(d.mask, append(make([]int, 0, t+capacity), mask[r]...))
		for j := 0; j < t; j++ {
			if mask[r][j] != 0 {
				d.count[r]++
				positions = append(positions, d.count[r]-1+optPositionOffset)
			} else {
				positions = append(positions, optPositionOffset-1)
			}
		}
		for i := 0; i < t; i++ {
			for j := 0; j < t; j++ {
				if j > i || mask[r][j] == 0 {
					attn[(r*t+i)*t+j] = maskMin
				}
			}
		}
	}
	// The layers run a few per graph, so the intermediate values of only
	// those are held at once (a graph keeps all of its own until done).
	h := o.input(g, x, g.InputInts(positions, b, t))
	for lo := 0; ; lo += optLayersPerGraph {
		hi := min(lo+optLayersPerGraph, len(o.layers))
		h = o.layerRange(g, h, lo, hi, g.InputInts(kvAt, b), g.Input(attn, b, t, t), d.cache)
		if hi == len(o.layers) {
			break
		}
		if err := g.Run(ctx); err != nil {
			return nil, nil, err
		}
		data, shape := nn.Value(h)
		g = nn.NewGraph(m.Ops)
		h = g.Input(data, shape...)
	}
	h = o.output(g, h)
	if !all {
		h = token(g, h, t-1)
	}
	logits := g.Ops.Linear(h, o.lmHead)
	if err := g.Run(ctx); err != nil {
		return nil, nil, err
	}
	return d, rowsOf(logits, o.cfg.VocabSize), nil
}

// step returns the compiled decode step for b rows, building it the first
// time that batch size is met.
func (d *optDecoder) step(b int) *optStep {
	if s, ok := d.steps[b]; ok {
		return s
	}
	c := d.cache.Capacity
	s := &optStep{tokens: make([]int, b), positions: make([]int, b), kvAt: make([]int, b), attn: make([]float32, b*c)}
	g := nn.NewGraph(d.m.Ops)
	x := g.Ops.Embed(g.InputInts(s.tokens, b, 1), d.o.embed)
	h := d.o.forward(g, x, g.InputInts(s.positions, b, 1), g.InputInts(s.kvAt, b), g.Input(s.attn, b, 1, c), d.cache)
	s.logits = g.Ops.Linear(h, d.o.lmHead)
	s.run = g.Compile()
	for k, old := range d.steps {
		old.run.Close()
		delete(d.steps, k)
	}
	d.steps[b] = s
	return s
}

// Step feeds one token per row and returns the next-token logits.
func (d *optDecoder) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	b := d.cache.Rows()
	if len(tokens) != b {
		return nil, fmt.Errorf("blip2: %d tokens for %d rows", len(tokens), b)
	}
	if tk := d.cache.MaxLen() + 1; tk > d.o.cfg.MaxPositionEmbeddings+1 {
		return nil, fmt.Errorf("blip2: sequence of %d tokens exceeds OPT's %d positions", tk, d.o.cfg.MaxPositionEmbeddings)
	}
	kvAt, err := d.cache.Reserve(1)
	if err != nil {
		return nil, err
	}
	s := d.step(b)
	copy(s.tokens, tokens)
	copy(s.kvAt, kvAt)
	c := d.cache.Capacity
	for r := 0; r < b; r++ {
		d.mask[r] = append(d.mask[r], 1)
		d.count[r]++
		s.positions[r] = d.count[r] - 1 + optPositionOffset
		row := s.attn[r*c : (r+1)*c]
		clear(row)
		for j, m := range d.mask[r] {
			if m == 0 {
				row[j] = maskMin
			}
		}
	}
	if err := s.run.Run(ctx); err != nil {
		d.cache.Truncate(1)
		return nil, err
	}
	return rowsOf(s.logits, d.o.cfg.VocabSize), nil
}

// Select rearranges the rows (beam reordering, dropping finished rows).
// The cache only rewrites its slot tables: no cached value is copied.
func (d *optDecoder) Select(src []int) error {
	if err := d.cache.Select(src); err != nil {
		return err
	}
	mask := make([][]int, len(src))
	count := make([]int, len(src))
	for i, s := range src {
		mask[i] = append(make([]int, 0, cap(d.mask[s])), d.mask[s]...)
		count[i] = d.count[s]
	}
	d.mask, d.count = mask, count
	return nil
}

// rowsOf splits a computed [.., V] node into rows of V values.
func rowsOf(n *G.Node, v int) [][]float32 {
	data, _ := nn.Value(n)
	out := make([][]float32, len(data)/v)
	for i := range out {
		out[i] = data[i*v : (i+1)*v : (i+1)*v]
	}
	return out
}

// promptEmbeddings embeds the prompt ids and puts the projected queries in
// place of the <image> tokens (or, for checkpoints without
// image_token_index, before the prompt, extending ids and mask).
func (m *Model) promptEmbeddings(g *nn.Graph, img *ImageOutputs, ids, mask [][]int) (*G.Node, [][]int, [][]int, error) {
	b := len(ids)
	if b == 0 || b != img.N || len(mask) != b {
		return nil, nil, nil, fmt.Errorf("blip2: %d prompts and %d masks for %d images", b, len(mask), img.N)
	}
	t := len(ids[0])
	nq := m.Config.NumQueryTokens
	dt := m.Config.TextHidden()
	queries := g.Input(img.Projected, b, nq, dt)
	if m.Config.ImageTokenIndex == nil {
		newIDs, newMask := make([][]int, b), make([][]int, b)
		for r := range ids {
			newIDs[r] = append(make([]int, nq), ids[r]...)
			newMask[r] = append(onesInt(nq), mask[r]...)
		}
		if t == 0 {
			return queries, newIDs, newMask, nil
		}
		x := g.Ops.Embed(g.InputInts(flatten(ids), b, t), m.LM.Embeddings())
		return concatSteps(g, queries, x), newIDs, newMask, nil
	}
	image := *m.Config.ImageTokenIndex
	for r, row := range ids {
		if len(row) != t || len(mask[r]) != t {
			return nil, nil, nil, fmt.Errorf("blip2: prompt rows have different lengths (pad the batch)")
		}
		n := 0
		for _, id := range row {
			if id == image {
				n++
			}
		}
		if n != nq {
			return nil, nil, nil, fmt.Errorf("blip2: prompt %d has %d <image> tokens (id %d), want num_query_tokens=%d", r, n, image, nq)
		}
	}
	x := g.Ops.Embed(g.InputInts(flatten(ids), b, t), m.LM.Embeddings())
	// The k-th <image> token of row r takes query k of image r: the
	// queries [B,nq,Dt] in order fill the rows of x [B,T,Dt] at these places.
	var at []int
	for r, row := range ids {
		for j, id := range row {
			if id == image {
				at = append(at, r*t+j)
			}
		}
	}
	return g.Ops.Scatter(x, queries, at), ids, mask, nil
}

func flatten(rows [][]int) []int {
	var out []int
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func onesInt(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}
