package ops

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"blipflow/model/nn"
)

// Ops implements nn.Ops on a Backend for the model's Gorgonia graphs. Each
// op uploads its inputs, runs on the GPU and downloads its output: correct,
// and the place device-resident graphs would replace. The KV cache keeps
// its values on the host (see NewKVCache) and a few glue ops run on the
// host (see nnglue.go).
type Ops struct {
	B *Backend
	// host runs the ops that have no GPU implementation here (host
	// fallbacks; their inputs and outputs are host tensors anyway).
	host nn.CPU
}

// NewOps returns the nn.Ops of b.
func NewOps(b *Backend) *Ops { return &Ops{B: b, host: nn.CPU{DType: nn.F32}} }

var _ nn.Ops = (*Ops)(nil)

// Name describes the backend.
func (o *Ops) Name() string { return o.B.Name() }

// WeightDType implements nn.Ops: the loader hands over float32 weights and
// the backend converts the large matrices to bf16 as it uploads them, so no
// host-side bf16 packing is needed.
func (o *Ops) WeightDType() nn.DType { return nn.F32 }

// device runs fn inside the context with the inputs uploaded, downloads
// the tensor it returns and releases everything.
func (o *Ops) device(in []*tensor.Dense, fn func(xs []Tensor) (Tensor, error)) ([]float32, error) {
	var out []float32
	err := o.B.Ctx.Do(func() error {
		o.B.mu.Lock()
		defer o.B.mu.Unlock()
		xs := make([]Tensor, 0, len(in))
		var owned []Tensor
		defer func() { o.B.Release(owned...) }()
		for _, d := range in {
			var t Tensor
			var err error
			switch data := d.Data().(type) {
			case []float32:
				t, err = o.B.Upload(data, d.Shape()...)
			case []int:
				t, err = o.B.UploadInts(data)
				if err == nil {
					t.Shape = d.Shape().Clone()
				}
			default:
				err = fmt.Errorf("input of type %T", data)
			}
			if err != nil {
				return err
			}
			xs = append(xs, t)
			owned = append(owned, t)
		}
		y, err := fn(xs)
		if err != nil {
			return err
		}
		defer o.B.Release(y)
		out, err = o.B.Download(y)
		return err
	})
	return out, err
}

// Linear implements nn.Ops.
func (o *Ops) Linear(x *G.Node, l *nn.Linear) *G.Node {
	return nn.ApplyFunc(nn.OpFunc{
		Name: "cuda_linear(" + l.W.Name + ")", InDims: []int{x.Dims()}, OutDims: x.Dims(),
		Shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if in[0][len(in[0])-1] != l.In {
				return nil, fmt.Errorf("linear %s: input width %d, want %d", l.W.Name, in[0][len(in[0])-1], l.In)
			}
			s := in[0].Clone()
			s[len(s)-1] = l.Out
			return s, nil
		},
		Run: func(in []*tensor.Dense, _ tensor.Shape) ([]float32, error) {
			return o.device(in, func(xs []Tensor) (Tensor, error) { return o.B.Linear(xs[0], l) })
		},
	}, x)
}

// Norm implements nn.Ops.
func (o *Ops) Norm(x *G.Node, n *nn.Norm) *G.Node {
	return nn.ApplyFunc(nn.OpFunc{
		Name: "cuda_norm(" + n.Gamma.Name + ")", InDims: []int{x.Dims()}, OutDims: x.Dims(),
		Shape: func(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil },
		Run: func(in []*tensor.Dense, _ tensor.Shape) ([]float32, error) {
			return o.device(in, func(xs []Tensor) (Tensor, error) { return o.B.Norm(xs[0], n) })
		},
	}, x)
}

// Activate implements nn.Ops.
func (o *Ops) Activate(x *G.Node, a nn.Activation) *G.Node {
	return nn.ApplyFunc(nn.OpFunc{
		Name: "cuda_" + string(a), InDims: []int{x.Dims()}, OutDims: x.Dims(),
		Shape: func(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil },
		Run: func(in []*tensor.Dense, _ tensor.Shape) ([]float32, error) {
			return o.device(in, func(xs []Tensor) (Tensor, error) { return o.B.Activate(xs[0], a) })
		},
	}, x)
}

// Attention implements nn.Ops.
func (o *Ops) Attention(q, k, v, mask, bias *G.Node, spec nn.AttentionSpec) *G.Node {
	inputs := []*G.Node{q, k, v}
	maskAt, biasAt := -1, -1
	if mask != nil {
		maskAt, inputs = len(inputs), append(inputs, mask)
	}
	if bias != nil {
		biasAt, inputs = len(inputs), append(inputs, bias)
	}
	dims := make([]int, len(inputs))
	for i, n := range inputs {
		dims[i] = n.Dims()
	}
	hd := spec.Heads * spec.HeadDim
	layout := func(in []tensor.Shape) (AttentionArgs, error) {
		qs, ks := in[0], in[1]
		if len(qs) != 3 || len(ks) != 3 || !ks.Eq(in[2]) || qs[2] != hd || ks[2] != hd {
			return AttentionArgs{}, fmt.Errorf("attention: q %v, k %v, v %v do not hold %d heads of %d", qs, ks, in[2], spec.Heads, spec.HeadDim)
		}
		a := AttentionArgs{Heads: spec.Heads, HeadDim: spec.HeadDim, Batch: qs[0], Tq: qs[1], Tk: ks[1],
			KB: ks[1] * hd, KT: hd, Scale: spec.Scale}
		if ks[0] != qs[0] {
			return a, fmt.Errorf("attention: keys batch %d, queries %d", ks[0], qs[0])
		}
		if maskAt >= 0 && !in[maskAt].Eq(tensor.Shape{a.Batch, a.Tq, a.Tk}) {
			return a, fmt.Errorf("attention: mask %v, want [%d %d %d]", in[maskAt], a.Batch, a.Tq, a.Tk)
		}
		if biasAt >= 0 && !in[biasAt].Eq(tensor.Shape{a.Heads, a.Tq, a.Tk}) {
			return a, fmt.Errorf("attention: bias %v, want [%d %d %d]", in[biasAt], a.Heads, a.Tq, a.Tk)
		}
		return a, nil
	}
	return nn.ApplyFunc(nn.OpFunc{
		Name: "cuda_attention", InDims: dims, OutDims: 3,
		Shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if _, err := layout(in); err != nil {
				return nil, err
			}
			return in[0].Clone(), nil
		},
		Run: func(in []*tensor.Dense, _ tensor.Shape) ([]float32, error) {
			shapes := make([]tensor.Shape, len(in))
			for i, d := range in {
				shapes[i] = d.Shape()
			}
			a, err := layout(shapes)
			if err != nil {
				return nil, err
			}
			return o.device(in, func(xs []Tensor) (Tensor, error) {
				a.Q, a.K, a.V = xs[0], xs[1], xs[2]
				if maskAt >= 0 {
					a.Mask = &xs[maskAt]
				}
				if biasAt >= 0 {
					a.Bias = &xs[biasAt]
				}
				return o.B.Attention(a)
			})
		},
	}, inputs...)
}

// Embed implements nn.Ops.
func (o *Ops) Embed(ids *G.Node, table *nn.Weight) *G.Node {
	dim := table.Shape[1]
	return nn.ApplyFunc(nn.OpFunc{
		Name: "cuda_embed(" + table.Name + ")", InDims: []int{ids.Dims()}, InTypes: []tensor.Dtype{tensor.Int}, OutDims: ids.Dims() + 1,
		Shape: func(in []tensor.Shape) (tensor.Shape, error) { return append(in[0].Clone(), dim), nil },
		Run: func(in []*tensor.Dense, _ tensor.Shape) ([]float32, error) {
			ids := in[0].Data().([]int)
			for _, id := range ids {
				if id < 0 || id >= table.Shape[0] {
					return nil, fmt.Errorf("token id %d outside the vocabulary of %d (%s)", id, table.Shape[0], table.Name)
				}
			}
			return o.device(in, func(xs []Tensor) (Tensor, error) { return o.B.Embed(xs[0], len(ids), table) })
		},
	}, ids)
}
