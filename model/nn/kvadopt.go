package nn

import "fmt"

// AdoptRows appends the rows of o (another cache of the same shape, with
// host storage) after c's rows, copying their cached values into slots of
// c that no row of c uses at those steps. It is how rows prefilled on
// their own join a running batch (continuous batching): the rows already
// in c keep their slots and values, and rows of different lengths live
// side by side as they do after Reserve. c's capacity grows to o's when
// o's is larger. o is left unchanged.
func (c *KVCache) AdoptRows(o *KVCache) error {
	switch {
	case c.Layers != o.Layers || c.Dim != o.Dim:
		return fmt.Errorf("kv cache: adopting rows of %d layers of width %d into %d layers of width %d", o.Layers, o.Dim, c.Layers, c.Dim)
	case c.K == nil || o.K == nil:
		return fmt.Errorf("kv cache: adopting rows needs host storage on both caches")
	}
	if o.Capacity > c.Capacity {
		grow := o.Capacity - c.Capacity
		for l := 0; l < c.Layers; l++ {
			c.K[l] = append(c.K[l], make([][]float32, grow)...)
			c.V[l] = append(c.V[l], make([][]float32, grow)...)
		}
		c.Width = append(c.Width, make([]int, grow)...)
		c.Capacity = o.Capacity
	}
	first := len(c.lens)
	c.AddRows(o.Rows())
	var used []bool
	for t := 0; t < o.MaxLen(); t++ {
		used = append(used[:0], make([]bool, c.Width[t])...)
		need := 0
		for r := 0; r < first; r++ {
			if t < c.lens[r] {
				used[c.table[r][t]] = true
			}
		}
		for r := 0; r < o.Rows(); r++ {
			if t < o.lens[r] {
				need++
			}
		}
		if free := c.Width[t] - count(used); free < need {
			width := c.Width[t] + need - free
			c.widen(t, width)
			used = append(used, make([]bool, width-len(used))...)
		}
		for r := 0; r < o.Rows(); r++ {
			if t >= o.lens[r] {
				continue
			}
			s := 0
			for used[s] {
				s++
			}
			used[s] = true
			nr := first + r
			c.table[nr] = append(c.table[nr], int32(s))
			for l := 0; l < c.Layers; l++ {
				copy(c.K[l][t][s*c.Dim:(s+1)*c.Dim], o.Key(l, r, t))
				copy(c.V[l][t][s*c.Dim:(s+1)*c.Dim], o.Value(l, r, t))
			}
		}
	}
	for r := 0; r < o.Rows(); r++ {
		c.lens[first+r] = o.lens[r]
	}
	return nil
}
