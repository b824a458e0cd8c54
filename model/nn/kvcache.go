package nn

import "fmt"

// KVCache holds a decoder's attention keys and values for every layer.
//
// Values are stored per layer and step, [Slots][Dim] for each step, and
// never move once written; a step's storage is made when a row first
// reserves it, as wide as the rows that use it (a prompt's steps hold the
// images, the steps after it every beam). Each row (a sequence being decoded) finds its entry for
// step t through its own slot table: slot(row, t). Reordering rows (beam
// search), dropping finished rows and repeating a row (beams sharing a
// prompt) rewrite only these small tables, so rows share the slots of their
// common past and a reorder costs nothing per layer. A row's new steps go
// to slots no other row uses at those steps (Reserve), so rows of different
// lengths can live side by side and rows can join a running batch (AddRows)
// without disturbing the others.
//
// The slot tables live on the host; the values live where the Ops that made
// the cache (Ops.NewKVCache) keep them: K and V on the host in fp32, K16 and
// V16 on the host in bf16 (NewKVCacheBF16: the CPU ops with bf16 weights,
// half the memory), or device memory an implementation keys by the
// *KVCache (all four nil; it follows Width, the slots each step has).
type KVCache struct {
	Layers, Dim, Capacity int
	// Slots is how many rows a step is made for at first (it widens when
	// more rows need it).
	Slots int
	// K and V are each layer's fp32 host storage per step, [Slots(t)][Dim]
	// (nil until reserved; K and V nil when the values are bf16 or kept
	// on a device).
	K, V [][][]float32
	// K16 and V16 are the bf16 host storage of a cache made by
	// NewKVCacheBF16, laid out as K and V (nil otherwise).
	K16, V16 [][][]uint16
	// Width is each step's number of slots (0 until reserved).
	Width []int

	table [][]int32 // per row: the slot of each of its steps
	lens  []int     // per row: number of cached steps
}

// NewKVCache returns an empty cache of rows rows for layers of width dim,
// with room for capacity steps. slots is the most rows expected at a time
// (rows after beam expansion); a step is made as wide as the rows that
// reserve it, up to slots at first, and widens if more need it.
func NewKVCache(layers, rows, slots, dim, capacity int) *KVCache {
	c := NewKVTables(layers, rows, slots, dim, capacity)
	for i := 0; i < layers; i++ {
		c.K = append(c.K, make([][]float32, capacity))
		c.V = append(c.V, make([][]float32, capacity))
	}
	return c
}

// NewKVCacheBF16 is NewKVCache with the values stored in bf16 (rounded to
// nearest even when written, widened to fp32 when read): half the memory
// of an fp32 cache, as a bf16 model keeps its cache.
func NewKVCacheBF16(layers, rows, slots, dim, capacity int) *KVCache {
	c := NewKVTables(layers, rows, slots, dim, capacity)
	for i := 0; i < layers; i++ {
		c.K16 = append(c.K16, make([][]uint16, capacity))
		c.V16 = append(c.V16, make([][]uint16, capacity))
	}
	return c
}

// NewKVTables returns a cache's bookkeeping without host storage, for an
// Ops implementation that keeps the values itself.
func NewKVTables(layers, rows, slots, dim, capacity int) *KVCache {
	c := &KVCache{Layers: layers, Slots: max(slots, rows, 1), Dim: dim, Capacity: capacity, Width: make([]int, capacity)}
	c.AddRows(rows)
	return c
}

// Rows returns the number of rows.
func (c *KVCache) Rows() int { return len(c.lens) }

// Len returns the number of cached steps of row r.
func (c *KVCache) Len(r int) int { return c.lens[r] }

// MaxLen returns the longest row's number of cached steps.
func (c *KVCache) MaxLen() int {
	n := 0
	for _, l := range c.lens {
		n = max(n, l)
	}
	return n
}

// Slot returns where step t of row r is stored in each layer's storage.
func (c *KVCache) Slot(r, t int) int { return int(c.table[r][t]) }

// DType is the element type of the host storage: BF16 for a cache made by
// NewKVCacheBF16, F32 otherwise.
func (c *KVCache) DType() DType {
	if c.K16 != nil {
		return BF16
	}
	return F32
}

// host reports whether the values are on the host (fp32 or bf16).
func (c *KVCache) host() bool { return c.K != nil || c.K16 != nil }

// Key returns the keys of step t of row r in a layer, in place (fp32 host
// storage; ReadKey reads any host storage).
func (c *KVCache) Key(layer, r, t int) []float32 {
	if c.K == nil {
		panic(fmt.Sprintf("nn: KVCache.Key on a cache without fp32 host storage (%s)", c.DType()))
	}
	s := int(c.table[r][t]) * c.Dim
	return c.K[layer][t][s : s+c.Dim]
}

// Value returns the values of step t of row r in a layer, in place (fp32
// host storage; ReadValue reads any host storage).
func (c *KVCache) Value(layer, r, t int) []float32 {
	if c.V == nil {
		panic(fmt.Sprintf("nn: KVCache.Value on a cache without fp32 host storage (%s)", c.DType()))
	}
	s := int(c.table[r][t]) * c.Dim
	return c.V[layer][t][s : s+c.Dim]
}

// AddRows appends n empty rows (a prompt to prefill joining the batch).
func (c *KVCache) AddRows(n int) {
	for i := 0; i < n; i++ {
		c.table = append(c.table, make([]int32, 0, c.Capacity))
		c.lens = append(c.lens, 0)
	}
}

// Reserve extends every row by n steps, choosing free slots for them, and
// returns each row's first new step: the positions where the step's keys
// and values are then written (Ops.KVWrite).
func (c *KVCache) Reserve(n int) ([]int, error) {
	pos := make([]int, len(c.lens))
	for r, l := range c.lens {
		if l+n > c.Capacity {
			return nil, fmt.Errorf("kv cache: row %d has %d steps, no room for %d more (capacity %d)", r, l, n, c.Capacity)
		}
		pos[r] = l
	}
	first := c.Capacity
	for _, p := range pos {
		first = min(first, p)
	}
	var used []bool
	for t := first; t < c.MaxLen()+n; t++ {
		used = append(used[:0], make([]bool, c.Width[t])...)
		need := 0
		for r := range c.lens { // slots already holding step t of some row
			if t < c.lens[r] {
				used[c.table[r][t]] = true
			}
			if t >= pos[r] && t < pos[r]+n {
				need++
			}
		}
		if free := c.Width[t] - count(used); free < need {
			width := max(c.Width[t]+need-free, min(c.Slots, len(c.lens)))
			c.widen(t, width)
			used = append(used, make([]bool, width-len(used))...)
		}
		for r := range c.lens {
			if t < pos[r] || t >= pos[r]+n {
				continue
			}
			s := r
			if s >= len(used) || used[s] {
				s = 0
				for used[s] {
					s++
				}
			}
			used[s] = true
			c.table[r] = append(c.table[r], int32(s))
		}
	}
	for r := range c.lens {
		c.lens[r] += n
	}
	return pos, nil
}

// widen gives step t room for width slots, keeping what it holds.
func (c *KVCache) widen(t, width int) {
	size := width * c.Dim
	widenStep(c.K, t, size)
	widenStep(c.V, t, size)
	widenStep(c.K16, t, size)
	widenStep(c.V16, t, size)
	c.Width[t] = width
}

// widenStep gives step t of every layer of store room for size values,
// keeping what it holds. Like growSteps and dropSteps it serves either
// host storage and does nothing to a storage the cache does not have.
func widenStep[T float32 | uint16](store [][][]T, t, size int) {
	for _, layer := range store {
		nw := make([]T, size)
		copy(nw, layer[t])
		layer[t] = nw
	}
}

// growSteps adds n empty steps to every layer of store.
func growSteps[T float32 | uint16](store [][][]T, n int) {
	for l := range store {
		store[l] = append(store[l], make([][]T, n)...)
	}
}

// dropSteps removes every layer's first n steps from store, keeping its
// length (n empty steps at the end).
func dropSteps[T float32 | uint16](store [][][]T, n int) {
	for l := range store {
		store[l] = append(store[l][n:], make([][]T, n)...)
	}
}

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// Truncate drops the last n steps of every row.
func (c *KVCache) Truncate(n int) {
	for r := range c.lens {
		c.lens[r] = max(c.lens[r]-n, 0)
		c.table[r] = c.table[r][:c.lens[r]]
	}
}

// Select rearranges the rows: afterwards row i is what row src[i] was.
// src may be shorter (rows dropped) or longer (rows repeated, sharing their
// past). No cached value moves.
func (c *KVCache) Select(src []int) error {
	table := make([][]int32, len(src))
	lens := make([]int, len(src))
	for i, s := range src {
		if s < 0 || s >= len(c.lens) {
			return fmt.Errorf("kv cache: row %d out of range [0,%d)", s, len(c.lens))
		}
		table[i] = append(make([]int32, 0, c.Capacity), c.table[s]...)
		lens[i] = c.lens[s]
	}
	c.table, c.lens = table, lens
	return nil
}
