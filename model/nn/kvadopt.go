package nn

import "fmt"

// AdoptRows appends the rows of o (another cache of the same shape, with
// host storage, fp32 or bf16: values are rounded or widened when the two
// differ) after c's rows, copying their cached values into slots of
// c that no row of c uses at those steps. It is how rows prefilled on
// their own join a running batch (continuous batching): the rows already
// in c keep their slots and values, and rows of different lengths live
// side by side as they do after Reserve.
//
// With shift > 0 each adopted row starts with shift filler steps (they
// point at slot 0 and hold whatever is there: the caller masks them), its
// own steps following: a model whose rows must all have one length (T5's
// shared position bias) pads the shorter rows this way. c's capacity grows
// to shift plus o's when that is larger. o is left unchanged.
func (c *KVCache) AdoptRows(o *KVCache, shift int) error {
	switch {
	case c.Layers != o.Layers || c.Dim != o.Dim:
		return fmt.Errorf("kv cache: adopting rows of %d layers of width %d into %d layers of width %d", o.Layers, o.Dim, c.Layers, c.Dim)
	case !c.host() || !o.host():
		return fmt.Errorf("kv cache: adopting rows needs host storage on both caches")
	}
	if shift < 0 {
		return fmt.Errorf("kv cache: adopting rows shifted by %d steps", shift)
	}
	if shift+o.Capacity > c.Capacity {
		grow := shift + o.Capacity - c.Capacity
		growSteps(c.K, grow)
		growSteps(c.V, grow)
		growSteps(c.K16, grow)
		growSteps(c.V16, grow)
		c.Width = append(c.Width, make([]int, grow)...)
		c.Capacity = shift + o.Capacity
	}
	first := len(c.lens)
	c.AddRows(o.Rows())
	for t := 0; t < shift; t++ {
		if c.Width[t] == 0 {
			c.widen(t, 1)
		}
		for r := 0; r < o.Rows(); r++ {
			c.table[first+r] = append(c.table[first+r], 0)
		}
	}
	var used []bool
	for ot := 0; ot < o.MaxLen(); ot++ {
		t := shift + ot
		used = append(used[:0], make([]bool, c.Width[t])...)
		need := 0
		for r := 0; r < first; r++ {
			if t < c.lens[r] {
				used[c.table[r][t]] = true
			}
		}
		for r := 0; r < o.Rows(); r++ {
			if ot < o.lens[r] {
				need++
			}
		}
		if free := c.Width[t] - count(used); free < need {
			width := c.Width[t] + need - free
			c.widen(t, width)
			used = append(used, make([]bool, width-len(used))...)
		}
		for r := 0; r < o.Rows(); r++ {
			if ot >= o.lens[r] {
				continue
			}
			s := 0
			for used[s] {
				s++
			}
			used[s] = true
			nr := first + r
			c.table[nr] = append(c.table[nr], int32(s))
			c.copySlot(t, s, o, r, ot)
		}
	}
	for r := 0; r < o.Rows(); r++ {
		c.lens[first+r] = shift + o.lens[r]
	}
	return nil
}

// DropLeading removes the first n steps of every row (padding no row
// needs any more), moving no value: the steps' storage is dropped and the
// capacity kept. Every row must hold at least n steps.
func (c *KVCache) DropLeading(n int) error {
	if n <= 0 {
		return nil
	}
	for r, l := range c.lens {
		if l < n {
			return fmt.Errorf("kv cache: dropping %d leading steps of row %d, which has %d", n, r, l)
		}
	}
	dropSteps(c.K, n)
	dropSteps(c.V, n)
	dropSteps(c.K16, n)
	dropSteps(c.V16, n)
	c.Width = append(c.Width[n:], make([]int, n)...)
	for r := range c.lens {
		c.table[r] = append(make([]int32, 0, c.Capacity), c.table[r][n:]...)
		c.lens[r] -= n
	}
	return nil
}
