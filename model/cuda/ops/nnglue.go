package ops

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"blipflow/model/nn"
)

// The KV cache and the glue ops of nn.Ops.
//
// The cache keeps its values on the host (nn.NewKVCache), so rows can be
// reordered, dropped and adopted from another cache (continuous batching)
// with the host code of package nn. KVWrite is the host op (a host
// fallback); CachedAttention runs the slot-table attention kernel over the
// layer's steps uploaded for the call. This uploads the layer's cache on
// every call: correct, but a device-resident cache (values written by
// kv_write_slots and kept between calls) is what a fast GPU decode needs.
//
// Host fallbacks (no GPU kernel used here yet): KVWrite, Slice, Concat,
// Scatter, Reshape (moves no data), Scale, Patches and Barrier (a host
// check by nature). Add and Mul run on the GPU.

// Device implements nn.Ops.
func (o *Ops) Device() string { return fmt.Sprintf("cuda:%d", o.B.Ctx.Ordinal) }

// NewKVCache implements nn.Ops: the values live on the host (see above).
func (o *Ops) NewKVCache(layers, rows, slots, dim, capacity int) *nn.KVCache {
	return nn.NewKVCache(layers, rows, slots, dim, capacity)
}

// KVWrite implements nn.Ops (host fallback: the cache is on the host).
func (o *Ops) KVWrite(x, pos *G.Node, cache *nn.KVCache, layer int, values bool) *G.Node {
	return o.host.KVWrite(x, pos, cache, layer, values)
}

// CachedAttention implements nn.Ops with the attention kernel reading the
// cache through its slot table.
func (o *Ops) CachedAttention(q, k, v, mask, bias *G.Node, cache *nn.KVCache, layer int, spec nn.AttentionSpec) *G.Node {
	inputs := []*G.Node{q}
	maskAt, biasAt := -1, -1
	if mask != nil {
		maskAt, inputs = len(inputs), append(inputs, mask)
	}
	if bias != nil {
		biasAt, inputs = len(inputs), append(inputs, bias)
	}
	for _, n := range []*G.Node{k, v} { // the writes this call must follow
		if n != nil {
			inputs = append(inputs, n)
		}
	}
	dims := make([]int, len(inputs))
	for i, n := range inputs {
		dims[i] = n.Dims()
	}
	hd := spec.Heads * spec.HeadDim
	return nn.ApplyFunc(nn.OpFunc{
		Name: fmt.Sprintf("cuda_cached_attention(%d)", layer), InDims: dims, OutDims: 3,
		Shape: func(in []tensor.Shape) (tensor.Shape, error) {
			qs := in[0]
			switch {
			case len(qs) != 3 || qs[2] != hd || cache.Dim != hd:
				return nil, fmt.Errorf("cached attention: q %v, cache width %d, want %d heads of %d", qs, cache.Dim, spec.Heads, spec.HeadDim)
			case maskAt >= 0 && (len(in[maskAt]) != 3 || in[maskAt][0] != qs[0] || in[maskAt][1] != qs[1]):
				return nil, fmt.Errorf("cached attention: mask %v for q %v", in[maskAt], qs)
			case biasAt >= 0 && (len(in[biasAt]) != 3 || in[biasAt][0] != spec.Heads || in[biasAt][1] != qs[1]):
				return nil, fmt.Errorf("cached attention: bias %v for q %v", in[biasAt], qs)
			case maskAt >= 0 && biasAt >= 0 && in[maskAt][2] != in[biasAt][2]:
				return nil, fmt.Errorf("cached attention: mask %v and bias %v of different widths", in[maskAt], in[biasAt])
			}
			return qs.Clone(), nil
		},
		Run: func(in []*tensor.Dense, out tensor.Shape) ([]float32, error) {
			b, tq := out[0], out[1]
			if b != cache.Rows() {
				return nil, fmt.Errorf("%d rows for a cache of %d", b, cache.Rows())
			}
			n := cache.MaxLen()
			tk := n
			if maskAt >= 0 {
				tk = in[maskAt].Shape()[2]
			} else if biasAt >= 0 {
				tk = in[biasAt].Shape()[2]
			}
			if n > tk {
				return nil, fmt.Errorf("the longest row has %d steps, mask and bias cover %d", n, tk)
			}
			keys, vals, table, lens, slots := packCache(cache, layer)
			hostIn := []*tensor.Dense{in[0],
				tensor.New(tensor.WithShape(max(len(keys), 1)), tensor.WithBacking(padded(keys))),
				tensor.New(tensor.WithShape(max(len(vals), 1)), tensor.WithBacking(padded(vals))),
				tensor.New(tensor.WithShape(max(len(table), 1)), tensor.WithBacking(paddedInts(table))),
				tensor.New(tensor.WithShape(b), tensor.WithBacking(lens))}
			at := len(hostIn)
			if maskAt >= 0 {
				hostIn = append(hostIn, in[maskAt])
			}
			if biasAt >= 0 {
				hostIn = append(hostIn, in[biasAt])
			}
			return o.device(hostIn, func(xs []Tensor) (Tensor, error) {
				a := AttentionArgs{Q: xs[0], K: xs[1], V: xs[2], Slots: &xs[3], Lens: &xs[4],
					SlotCount: slots, TableStride: max(n, 1),
					Heads: spec.Heads, HeadDim: spec.HeadDim, Batch: b, Tq: tq, Tk: tk, Scale: spec.Scale}
				i := at
				if maskAt >= 0 {
					a.Mask = &xs[i]
					i++
				}
				if biasAt >= 0 {
					a.Bias = &xs[i]
				}
				return o.B.Attention(a)
			})
		},
	}, inputs...)
}

// packCache lays a layer's cached steps out as the attention kernel reads
// them: keys and values [MaxLen][slots][Dim] (each step's slots padded to
// the widest step), the slot table [Rows][MaxLen] and each row's length.
func packCache(c *nn.KVCache, layer int) (keys, vals []float32, table, lens []int, slots int) {
	n := c.MaxLen()
	for t := 0; t < n; t++ {
		slots = max(slots, c.Width[t])
	}
	keys = make([]float32, n*slots*c.Dim)
	vals = make([]float32, n*slots*c.Dim)
	for t := 0; t < n; t++ {
		copy(keys[t*slots*c.Dim:], c.K[layer][t])
		copy(vals[t*slots*c.Dim:], c.V[layer][t])
	}
	table = make([]int, c.Rows()*n)
	lens = make([]int, c.Rows())
	for r := range lens {
		lens[r] = c.Len(r)
		for t := 0; t < lens[r]; t++ {
			table[r*n+t] = c.Slot(r, t)
		}
	}
	return keys, vals, table, lens, max(slots, 1)
}

// padded returns s, or one zero when it is empty (nothing to upload).
func padded(s []float32) []float32 {
	if len(s) == 0 {
		return []float32{0}
	}
	return s
}

func paddedInts(s []int) []int {
	if len(s) == 0 {
		return []int{0}
	}
	return s
}

// Add implements nn.Ops on the GPU.
func (o *Ops) Add(a, b *G.Node) *G.Node { return o.binary("add", a, b) }

// Mul implements nn.Ops on the GPU.
func (o *Ops) Mul(a, b *G.Node) *G.Node { return o.binary("mul", a, b) }

func (o *Ops) binary(kernel string, a, b *G.Node) *G.Node {
	return nn.ApplyFunc(nn.OpFunc{
		Name: "cuda_" + kernel, InDims: []int{a.Dims(), b.Dims()}, OutDims: a.Dims(),
		Shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if !in[0].Eq(in[1]) {
				return nil, fmt.Errorf("%s: shapes %v and %v", kernel, in[0], in[1])
			}
			return in[0].Clone(), nil
		},
		Run: func(in []*tensor.Dense, _ tensor.Shape) ([]float32, error) {
			return o.device(in, func(xs []Tensor) (Tensor, error) { return o.B.Binary(kernel, xs[0], xs[1]) })
		},
	}, a, b)
}

// Slice implements nn.Ops (host fallback).
func (o *Ops) Slice(x *G.Node, axis, lo, hi int) *G.Node { return o.host.Slice(x, axis, lo, hi) }

// Concat implements nn.Ops (host fallback).
func (o *Ops) Concat(a, b *G.Node, axis int) *G.Node { return o.host.Concat(a, b, axis) }

// Scatter implements nn.Ops (host fallback).
func (o *Ops) Scatter(x, src *G.Node, at []int) *G.Node { return o.host.Scatter(x, src, at) }

// Reshape implements nn.Ops (host: no data moves).
func (o *Ops) Reshape(x *G.Node, shape ...int) *G.Node { return o.host.Reshape(x, shape...) }

// Scale implements nn.Ops (host fallback).
func (o *Ops) Scale(x *G.Node, s float32) *G.Node { return o.host.Scale(x, s) }

// Patches implements nn.Ops (host fallback).
func (o *Ops) Patches(x *G.Node, p int) *G.Node { return o.host.Patches(x, p) }

// Barrier implements nn.Ops (a host check).
func (o *Ops) Barrier(x *G.Node, check func() error) *G.Node { return o.host.Barrier(x, check) }
