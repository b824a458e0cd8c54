package nn

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"

	"blipflow/model/bf16"
	"blipflow/model/blas"
)

// stepPerHead is the decode attention as it was computed one (row, head)
// at a time, reading the fp32 storage in place: the reference the
// restructured step must reproduce bit for bit on fp32 storage.
func stepPerHead(a *cachedAttn, out []float32) {
	var impl gonum.Implementation
	hd, dh := a.spec.Heads*a.spec.HeadDim, a.spec.HeadDim
	for bh := 0; bh < a.b*a.spec.Heads; bh++ {
		r, h := bh/a.spec.Heads, bh%a.spec.Heads
		n := a.cache.Len(r)
		q := a.q[r*hd+h*dh : r*hd+(h+1)*dh]
		sc := make([]float32, n)
		for t := range sc {
			k := a.cache.Key(a.layer, r, t)[h*dh : (h+1)*dh]
			sc[t] = a.spec.Scale * impl.Sdot(dh, q, 1, k, 1)
		}
		if a.mask != nil {
			for t := range sc {
				sc[t] += a.mask[r*a.tm+t]
			}
		}
		if a.bias != nil {
			for t := range sc {
				sc[t] += a.bias[h*a.tb+t]
			}
		}
		softmaxRow(sc)
		o := out[r*hd+h*dh : r*hd+(h+1)*dh]
		clear(o)
		for t, p := range sc {
			impl.Saxpy(dh, p, a.cache.Value(a.layer, r, t)[h*dh:(h+1)*dh], 1, o, 1)
		}
	}
}

// attnCase is a cache of rows of different lengths, some sharing their
// past (Select repeats a row), with random keys and values, a query per
// row (or tq per row), an additive mask hiding some steps and a bias.
type attnCase struct {
	cache      *KVCache
	spec       AttentionSpec
	q          []float32
	mask, bias []float32
	tm         int
}

// newAttnCase builds the case on a cache made by newCache. Calls with the
// same seed write the same values (rounded by a bf16 cache).
func newAttnCase(t *testing.T, newCache func(layers, rows, slots, dim, capacity int) *KVCache, heads, dh, tq int, seed uint64) attnCase {
	const layers, capacity = 2, 9
	d := heads * dh
	c := newCache(layers, 2, 4, d, capacity)
	if _, err := c.Reserve(6); err != nil {
		t.Fatal(err)
	}
	c.AddRows(1) // a shorter row joins
	if _, err := c.Reserve(2); err != nil {
		t.Fatal(err)
	}
	src := NewRandomSource(seed, 1)
	for l := 0; l < layers; l++ {
		for r := 0; r < c.Rows(); r++ {
			for s := 0; s < c.Len(r); s++ {
				c.WriteKey(l, r, s, src.Shaped([]int{d}))
				c.WriteValue(l, r, s, src.Shaped([]int{d}))
			}
		}
	}
	if err := c.Select([]int{2, 0, 1, 0}); err != nil { // rows reordered, one repeated
		t.Fatal(err)
	}
	rows := c.Rows()
	a := attnCase{cache: c, spec: AttentionSpec{Heads: heads, HeadDim: dh, Scale: float32(1 / math.Sqrt(float64(dh)))}, tm: capacity}
	a.q = src.Shaped([]int{rows * tq * d})
	for i := range a.q {
		a.q[i] *= 3 // scores of a few units: a peaked softmax
	}
	a.mask = make([]float32, rows*tq*capacity)
	for i := range a.mask {
		if i%5 == 1 {
			a.mask[i] = float32(math.Inf(-1))
		}
	}
	a.bias = src.Shaped([]int{heads * tq * capacity})
	return a
}

func (a attnCase) run(layer, tq int, out []float32) {
	ca := &cachedAttn{cache: a.cache, layer: layer, spec: a.spec, b: a.cache.Rows(), tq: tq, q: a.q, mask: a.mask, tm: a.tm, bias: a.bias, tb: a.tm}
	if tq == 1 {
		ca.step(out)
	} else {
		ca.gathered(NewCPU(blas.Gonum{}), out)
	}
}

// TestStepFP32MatchesPerHead checks that on fp32 storage the decode step
// gives exactly what one head at a time gives, with rows and heads split
// over several goroutines or not.
func TestStepFP32MatchesPerHead(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 3, 8} {
		runtime.GOMAXPROCS(procs) // 8 > 4 rows: heads split into groups
		a := newAttnCase(t, NewKVCache, 5, 8, 1, 1)
		got, want := make([]float32, len(a.q)), make([]float32, len(a.q))
		a.run(1, 1, got)
		stepPerHead(&cachedAttn{cache: a.cache, layer: 1, spec: a.spec, b: a.cache.Rows(), tq: 1, q: a.q, mask: a.mask, tm: a.tm, bias: a.bias, tb: a.tm}, want)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("GOMAXPROCS %d: value %d is %v, one head at a time gives %v", procs, i, got[i], want[i])
			}
		}
	}
}

// TestCachedAttentionBF16 compares attention over a bf16 cache with
// attention over fp32 caches, for the decode step (the vector kernels at a
// head width of 80, the Go loops at 8) and a prefill of 3 queries.
//
// Against an fp32 cache holding the same bf16-rounded values, only the
// order of fp32 sums differs: the outputs agree to 1e-5 of the largest
// value.
//
// Against the fp32 cache of the unrounded values, the rounding of keys and
// values (bf16 keeps 8 significant bits: each moves by at most u = 2^-9 of
// itself) is bounded per row and head: a score scale·q·k moves by at most
// δ = u·scale·Σ|q_i·k_i|, so each softmax weight moves by a factor within
// e^{±2δ} and the weights by at most e^{2δ}-1 in all; a value moves by at
// most u·|v|. Each output element then moves by at most
// (e^{2δ}-1+u)·max_t|v_t| (the largest δ and |v| over the row's steps),
// plus fp32 rounding (1e-5 of max|v|).
func TestCachedAttentionBF16(t *testing.T) {
	const u = 1.0 / 512
	for _, shape := range []struct{ heads, dh, tq int }{{4, 80, 1}, {3, 8, 1}, {4, 80, 3}} {
		t.Run(fmt.Sprintf("%dx%d/tq%d", shape.heads, shape.dh, shape.tq), func(t *testing.T) {
			b16 := newAttnCase(t, NewKVCacheBF16, shape.heads, shape.dh, shape.tq, 9)
			f32 := newAttnCase(t, NewKVCache, shape.heads, shape.dh, shape.tq, 9)
			if b16.cache.DType() != BF16 || f32.cache.DType() != F32 {
				t.Fatalf("storage dtypes %s and %s", b16.cache.DType(), f32.cache.DType())
			}
			// an fp32 cache of the rounded values
			rounded := newAttnCase(t, NewKVCache, shape.heads, shape.dh, shape.tq, 9)
			row := make([]float32, rounded.cache.Dim)
			for l := 0; l < 2; l++ {
				for r := 0; r < 3; r++ { // rows 0..2 hold every row's steps (row 3 repeats row 1)
					for s := 0; s < rounded.cache.Len(r); s++ {
						b16.cache.ReadKey(row, l, r, s)
						rounded.cache.WriteKey(l, r, s, row)
						b16.cache.ReadValue(row, l, r, s)
						rounded.cache.WriteValue(l, r, s, row)
					}
				}
			}
			got, exact, want := make([]float32, len(b16.q)), make([]float32, len(b16.q)), make([]float32, len(b16.q))
			b16.run(1, shape.tq, got)
			rounded.run(1, shape.tq, exact)
			f32.run(1, shape.tq, want)
			c := f32.cache
			hd, dh := c.Dim, shape.dh
			var worstKernel, worstRatio, worstRel float64
			for r := 0; r < c.Rows(); r++ {
				n := c.Len(r)
				for h := 0; h < shape.heads; h++ {
					var delta, vmax float64
					kr, vr := make([]float32, hd), make([]float32, hd)
					for s := 0; s < n; s++ {
						c.ReadKey(kr, 1, r, s)
						c.ReadValue(vr, 1, r, s)
						for i := h * dh; i < (h+1)*dh; i++ {
							vmax = math.Max(vmax, math.Abs(float64(vr[i])))
						}
						for j := 0; j < shape.tq; j++ {
							var sum float64
							for i := h * dh; i < (h+1)*dh; i++ {
								sum += math.Abs(float64(b16.q[(r*shape.tq+j)*hd+i]) * float64(kr[i]))
							}
							delta = math.Max(delta, u*float64(b16.spec.Scale)*sum)
						}
					}
					bound := (math.Expm1(2*delta)+u)*vmax + 1e-5*vmax
					for j := 0; j < shape.tq; j++ {
						for i := h * dh; i < (h+1)*dh; i++ {
							at := (r*shape.tq+j)*hd + i
							if d := math.Abs(float64(got[at] - exact[at])); d > 1e-5*vmax {
								t.Fatalf("row %d query %d element %d: bf16 cache %v, fp32 cache of its values %v", r, j, i, got[at], exact[at])
							} else {
								worstKernel = math.Max(worstKernel, d/vmax)
							}
							d := math.Abs(float64(got[at] - want[at]))
							if d > bound {
								t.Fatalf("row %d query %d element %d: bf16 cache %v, fp32 cache %v: error %.3g above the bound %.3g", r, j, i, got[at], want[at], d, bound)
							}
							worstRatio = math.Max(worstRatio, d/bound)
							worstRel = math.Max(worstRel, d/vmax)
						}
					}
				}
			}
			t.Logf("bf16 vs fp32 cache: worst error %.3g of max|v| (%.2f of the bound); vs fp32 cache of the rounded values %.3g", worstRel, worstRatio, worstKernel)
		})
	}
}

// TestCPUKVCacheDType checks that the CPU ops keep the cache in bf16 with
// bf16 weights and in fp32 otherwise, and that a graph's KVWrite rounds
// into bf16 storage and CachedAttention reads it.
func TestCPUKVCacheDType(t *testing.T) {
	if c := NewCPU(blas.Gonum{}).NewKVCache(1, 1, 1, 4, 2); c.DType() != F32 || c.K == nil || c.K16 != nil {
		t.Fatalf("fp32 ops: cache of %s", c.DType())
	}
	ops := NewCPUBF16(blas.Gonum{}, bf16.NewGoEngine(1))
	c := ops.NewKVCache(1, 2, 2, 32, 3)
	if c.DType() != BF16 || c.K != nil || c.K16 == nil {
		t.Fatalf("bf16 ops: cache of %s", c.DType())
	}
	at, err := c.Reserve(2)
	if err != nil {
		t.Fatal(err)
	}
	src := NewRandomSource(5, 1)
	k, v, q := src.Shaped([]int{2 * 2 * 32}), src.Shaped([]int{2 * 2 * 32}), src.Shaped([]int{2 * 2 * 32})
	g := NewGraph(ops)
	pos := g.InputInts(at, 2)
	kw := ops.KVWrite(g.Input(k, 2, 2, 32), pos, c, 0, false)
	vw := ops.KVWrite(g.Input(v, 2, 2, 32), pos, c, 0, true)
	out := ops.CachedAttention(g.Input(q, 2, 2, 32), kw, vw, nil, nil, c, 0, AttentionSpec{Heads: 2, HeadDim: 16, Scale: 0.25})
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for r := 0; r < 2; r++ {
		for s := 0; s < 2; s++ {
			for i, h := range c.KeyBF16(0, r, s) {
				if want := bf16.Round(k[(r*2+s)*32+i]); h != want {
					t.Fatalf("row %d step %d key %d: stored %#04x, want %#04x (rounded to nearest even)", r, s, i, h, want)
				}
			}
			for i, h := range c.ValueBF16(0, r, s) {
				if want := bf16.Round(v[(r*2+s)*32+i]); h != want {
					t.Fatalf("row %d step %d value %d: stored %#04x, want %#04x", r, s, i, h, want)
				}
			}
		}
	}
	// The same attention over the widened values, from the plain kernel.
	kb, vb := make([]float32, len(k)), make([]float32, len(v))
	bf16.ToFloat32(kb, func() []uint16 { h := make([]uint16, len(k)); bf16.FromFloat32(h, k); return h }())
	bf16.ToFloat32(vb, func() []uint16 { h := make([]uint16, len(v)); bf16.FromFloat32(h, v); return h }())
	want := make([]float32, len(q))
	attention(blas.Gonum{}, AttentionShape{Batch: 2, Heads: 2, HeadDim: 16, Tq: 2, Tk: 2, Scale: 0.25}, q, kb, vb, nil, nil, want)
	got, _ := Value(out)
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
			t.Fatalf("attention value %d: %v, want %v", i, got[i], want[i])
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Key on bf16 storage did not panic")
		}
	}()
	c.Key(0, 0, 0)
}
