package nn

import (
	"fmt"
	"runtime"

	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"blipflow/model/bf16"
)

// KVWrite implements Ops.
func (c *CPU) KVWrite(x, pos *G.Node, cache *KVCache, layer int, values bool) *G.Node {
	which := "k"
	if values {
		which = "v"
	}
	return c.apply(&op{
		name: fmt.Sprintf("kv_write(%s%d)", which, layer), inDims: []int{3, 1}, inTypes: []tensor.Dtype{tensor.Float32, tensor.Int}, outDims: 3,
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if len(in[0]) != 3 || in[0][2] != cache.Dim || in[1][0] != in[0][0] {
				return nil, fmt.Errorf("kv_write: input %v with positions %v, cache rows of width %d", in[0], in[1], cache.Dim)
			}
			return in[0].Clone(), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			x := f32(in[0])
			copy(out, x)
			s := in[0].Shape()
			b, t, d := s[0], s[1], s[2]
			if b != cache.Rows() {
				return fmt.Errorf("kv_write: %d rows for a cache of %d", b, cache.Rows())
			}
			if !cache.host() {
				return fmt.Errorf("kv_write: the cache keeps no values on the host")
			}
			write := cache.WriteKey
			if values {
				write = cache.WriteValue
			}
			for r, p := range in[1].Data().([]int) {
				if p < 0 || p+t > cache.Len(r) {
					return fmt.Errorf("kv_write: row %d steps [%d,%d) not reserved (row has %d)", r, p, p+t, cache.Len(r))
				}
				for i := 0; i < t; i++ {
					write(layer, r, p+i, x[(r*t+i)*d:(r*t+i+1)*d])
				}
			}
			return nil
		},
	}, x, pos)
}

// CachedAttention implements Ops.
func (c *CPU) CachedAttention(q, k, v, mask, bias *G.Node, cache *KVCache, layer int, spec AttentionSpec) *G.Node {
	inputs := []*G.Node{q}
	maskAt, biasAt := -1, -1
	if mask != nil {
		maskAt = len(inputs)
		inputs = append(inputs, mask)
	}
	if bias != nil {
		biasAt = len(inputs)
		inputs = append(inputs, bias)
	}
	for _, n := range []*G.Node{k, v} {
		if n != nil {
			inputs = append(inputs, n)
		}
	}
	dims := make([]int, len(inputs))
	for i, n := range inputs {
		dims[i] = n.Dims()
	}
	hd := spec.Heads * spec.HeadDim
	return c.apply(&op{
		name: fmt.Sprintf("cached_attention(%d)", layer), inDims: dims, outDims: 3,
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			qs := in[0]
			switch {
			case len(qs) != 3 || qs[2] != hd || cache.Dim != hd:
				return nil, fmt.Errorf("cached attention: q %v, cache width %d, want %d heads of %d", qs, cache.Dim, spec.Heads, spec.HeadDim)
			case maskAt >= 0 && (len(in[maskAt]) != 3 || in[maskAt][0] != qs[0] || in[maskAt][1] != qs[1]):
				return nil, fmt.Errorf("cached attention: mask %v for q %v", in[maskAt], qs)
			case biasAt >= 0 && (len(in[biasAt]) != 3 || in[biasAt][0] != spec.Heads || in[biasAt][1] != qs[1]):
				return nil, fmt.Errorf("cached attention: bias %v for q %v", in[biasAt], qs)
			}
			return qs.Clone(), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			s := in[0].Shape()
			a := cachedAttn{cache: cache, layer: layer, spec: spec, b: s[0], tq: s[1], q: f32(in[0])}
			if a.b != cache.Rows() {
				return fmt.Errorf("cached attention: %d rows for a cache of %d", a.b, cache.Rows())
			}
			if maskAt >= 0 {
				a.mask, a.tm = f32(in[maskAt]), in[maskAt].Shape()[2]
			}
			if biasAt >= 0 {
				a.bias, a.tb = f32(in[biasAt]), in[biasAt].Shape()[2]
			}
			if !cache.host() {
				return fmt.Errorf("cached attention: the cache keeps no values on the host")
			}
			for r := 0; r < a.b; r++ {
				if n := cache.Len(r); (maskAt >= 0 && n > a.tm) || (biasAt >= 0 && n > a.tb) {
					return fmt.Errorf("cached attention: row %d has %d steps, mask covers %d and bias %d", r, n, a.tm, a.tb)
				}
			}
			if a.tq == 1 {
				a.step(out)
			} else {
				a.gathered(c, out)
			}
			return nil
		},
	}, inputs...)
}

// cachedAttn is one CachedAttention call.
type cachedAttn struct {
	cache      *KVCache
	layer      int
	spec       AttentionSpec
	b, tq      int
	q          []float32
	mask, bias []float32
	tm, tb     int
}

// step attends one query per row, reading the keys and values in place
// through the rows' slot tables. The work is split into units of a row and
// a range of heads (all heads, unless there are fewer rows than cores),
// spread over the cores; a unit reads each cached step's keys for its
// heads once and scores every head from them, then does the same with the
// values. fp32 storage: every score and output is computed as one head at
// a time would (the same BLAS dot products and sums in the same order),
// whatever the split. bf16 storage: the values are widened inside the
// dot and sum kernels (bf16.DotSegments, bf16.AxpySegments).
func (a *cachedAttn) step(out []float32) {
	var impl gonum.Implementation
	heads, dh := a.spec.Heads, a.spec.HeadDim
	hd := heads * dh
	groups := 1
	if w := runtime.GOMAXPROCS(0); a.b < w {
		groups = min(heads, (w+a.b-1)/a.b)
	}
	per := (heads + groups - 1) / groups // heads per unit
	groups = (heads + per - 1) / per
	bf := a.cache.DType() == BF16
	parallel(a.b*groups, 1, func(lo, hi int) {
		scores := make([]float32, per*a.cache.Capacity)
		for u := lo; u < hi; u++ {
			r, g := u/groups, u%groups
			h0, h1 := g*per, min(heads, (g+1)*per)
			nh, n := h1-h0, a.cache.Len(r)
			o := out[r*hd+h0*dh : r*hd+h1*dh]
			clear(o)
			if n == 0 { // nothing cached: nothing to attend to
				continue
			}
			q := a.q[r*hd+h0*dh : r*hd+h1*dh]
			for t := 0; t < n; t++ { // scores[h*n+t]: head h0+h, step t
				s := a.cache.Slot(r, t)*a.cache.Dim + h0*dh
				if bf {
					bf16.DotSegments(scores[t:], n, q, a.cache.K16[a.layer][t][s:s+nh*dh], dh, a.spec.Scale)
					continue
				}
				k := a.cache.K[a.layer][t][s : s+nh*dh]
				for h := 0; h < nh; h++ {
					scores[h*n+t] = a.spec.Scale * impl.Sdot(dh, q[h*dh:(h+1)*dh], 1, k[h*dh:(h+1)*dh], 1)
				}
			}
			for h := 0; h < nh; h++ {
				sc := scores[h*n : (h+1)*n]
				if a.mask != nil {
					m := a.mask[r*a.tm : r*a.tm+n]
					for t := range sc {
						sc[t] += m[t]
					}
				}
				if a.bias != nil {
					bb := a.bias[(h0+h)*a.tb : (h0+h)*a.tb+n]
					for t := range sc {
						sc[t] += bb[t]
					}
				}
				softmaxRow(sc)
			}
			for t := 0; t < n; t++ {
				s := a.cache.Slot(r, t)*a.cache.Dim + h0*dh
				if bf {
					bf16.AxpySegments(o, scores[t:], n, a.cache.V16[a.layer][t][s:s+nh*dh], dh)
					continue
				}
				v := a.cache.V[a.layer][t][s : s+nh*dh]
				for h := 0; h < nh; h++ {
					impl.Saxpy(dh, scores[h*n+t], v[h*dh:(h+1)*dh], 1, o[h*dh:(h+1)*dh], 1)
				}
			}
		}
	})
}

// gathered attends several queries per row (a prefill): each row's steps
// are copied together (widened from bf16 storage) and multiplied with the BLAS, as Attention does.
func (a *cachedAttn) gathered(c *CPU, out []float32) {
	hd := a.spec.Heads * a.spec.HeadDim
	for r := 0; r < a.b; r++ {
		n := a.cache.Len(r)
		kb, vb := make([]float32, n*hd), make([]float32, n*hd)
		for t := 0; t < n; t++ {
			a.cache.ReadKey(kb[t*hd:(t+1)*hd], a.layer, r, t)
			a.cache.ReadValue(vb[t*hd:(t+1)*hd], a.layer, r, t)
		}
		var m, bias []float32
		if a.mask != nil {
			m = make([]float32, a.tq*n)
			for i := 0; i < a.tq; i++ {
				copy(m[i*n:(i+1)*n], a.mask[(r*a.tq+i)*a.tm:])
			}
		}
		if a.bias != nil {
			bias = make([]float32, a.spec.Heads*a.tq*n)
			for i := 0; i < a.spec.Heads*a.tq; i++ {
				copy(bias[i*n:(i+1)*n], a.bias[i*a.tb:])
			}
		}
		s := AttentionShape{Batch: 1, Heads: a.spec.Heads, HeadDim: a.spec.HeadDim, Tq: a.tq, Tk: n, Scale: a.spec.Scale}
		attention(c.BLAS, s, a.q[r*a.tq*hd:(r+1)*a.tq*hd], kb, vb, m, bias, out[r*a.tq*hd:(r+1)*a.tq*hd])
	}
}
