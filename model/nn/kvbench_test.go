package nn

import (
	"fmt"
	"testing"
)

// decodeCache returns a cache of the given storage for a blip2-opt-2.7b
// decode (32 heads of 80) of rows rows with steps cached steps in each of
// layers layers, filled with random keys and values, and a query per row.
func decodeCache(tb testing.TB, bf bool, layers, rows, steps int) (*KVCache, []float32) {
	const dim = 2560
	newCache := NewKVCache
	if bf {
		newCache = NewKVCacheBF16
	}
	c := newCache(layers, rows, rows, dim, steps)
	if _, err := c.Reserve(steps); err != nil {
		tb.Fatal(err)
	}
	src := NewRandomSource(7, 1)
	for l := 0; l < layers; l++ {
		for r := 0; r < rows; r++ {
			for t := 0; t < steps; t++ {
				c.WriteKey(l, r, t, src.Shaped([]int{dim}))
				c.WriteValue(l, r, t, src.Shaped([]int{dim}))
			}
		}
	}
	return c, src.Shaped([]int{rows * dim})
}

// BenchmarkCachedAttentionStep times one decode step's attention of one
// layer (blip2-opt-2.7b: 32 heads of 80, 43 cached steps) at batch 32 over
// an fp32 and a bf16 cache ("fp32-per-head": the fp32 step one row and
// head at a time, on one core, as a reference). The calls cycle through 8 layers' caches (112
// or 56 MB) so that, as in a decode, the keys come from memory rather than
// from a cache the previous call warmed.
func BenchmarkCachedAttentionStep(b *testing.B) {
	const layers, rows, steps = 8, 32, 43
	for _, name := range []string{"fp32-per-head", "fp32", "bf16"} {
		bf := name == "bf16"
		c, q := decodeCache(b, bf, layers, rows, steps)
		spec := AttentionSpec{Heads: 32, HeadDim: 80, Scale: 0.1}
		out := make([]float32, len(q))
		b.Run(fmt.Sprintf("%s/batch%d", name, rows), func(b *testing.B) {
			bytes := 2 * rows * steps * c.Dim * 4
			if bf {
				bytes /= 2
			}
			b.SetBytes(int64(bytes))
			l := 0
			for b.Loop() {
				a := &cachedAttn{cache: c, layer: l, spec: spec, b: rows, tq: 1, q: q}
				if name == "fp32-per-head" {
					stepPerHead(a, out)
				} else {
					a.step(out)
				}
				l = (l + 1) % layers
			}
		})
	}
}
