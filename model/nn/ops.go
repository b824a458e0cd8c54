package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"blipflow/model/bf16"
	"blipflow/model/blas"
)

// Ops adds the model's operations to a Gorgonia graph: the heavy ones
// (products, norms, attention), the KV cache and the light glue between
// them. The model code builds its graphs with this interface only, so a
// GPU implementation of
// the same ops can replace the CPU one without other changes. Values
// between ops are float32 tensors on Device(); weights carry their own
// dtype (WeightDType).
type Ops interface {
	// Name describes the implementation (its BLAS, bf16 engine and dtype).
	Name() string
	// WeightDType is the dtype the model's large matrices are stored in
	// for these ops (the loader converts them at load time).
	WeightDType() DType
	// Linear applies l to the last dimension of x.
	Linear(x *G.Node, l *Linear) *G.Node
	// Norm applies a layer norm or RMS norm to the last dimension of x.
	Norm(x *G.Node, n *Norm) *G.Node
	// Activate applies a nonlinearity elementwise.
	Activate(x *G.Node, a Activation) *G.Node
	// Attention is multi-head scaled dot-product attention. q is
	// [B,Tq,H·D]; k and v are [B,Tk,H·D]. mask ([B,Tq,Tk]) and bias
	// ([H,Tq,Tk]) are additive and may be nil. (Attention over a KV cache
	// is CachedAttention.)
	Attention(q, k, v, mask, bias *G.Node, spec AttentionSpec) *G.Node
	// NewKVCache returns an empty cache of rows rows for layers of width
	// dim with room for capacity steps (slots: the most rows expected at a
	// time; see the function NewKVCache), its values kept where these ops
	// run.
	NewKVCache(layers, rows, slots, dim, capacity int) *KVCache
	// KVWrite stores x [B,T,D] as steps pos[b]..pos[b]+T-1 of row b of a
	// layer's keys (values when values is set) in cache, and returns x:
	// ops that read the cache take the result as an input so they run
	// after the write. pos is an int input [B] (KVCache.Reserve's result),
	// so running the graph again writes the same places.
	KVWrite(x, pos *G.Node, cache *KVCache, layer int, values bool) *G.Node
	// CachedAttention is Attention of q [B,Tq,H·D] over each row's cached
	// steps of a layer (KVCache.Len(b) of them, the last Tq being the
	// query positions when the step was just written). k and v are the
	// KVWrite results that must precede it (nil when nothing is written).
	// mask [B,Tq,Tm] and bias [H,Tq,Tm] (Tm at least the longest row) are
	// additive and may be nil.
	CachedAttention(q, k, v, mask, bias *G.Node, cache *KVCache, layer int, spec AttentionSpec) *G.Node
	// Slice returns x restricted to [lo,hi) along axis.
	Slice(x *G.Node, axis, lo, hi int) *G.Node
	// Concat joins a and b along axis (their other dimensions equal).
	Concat(a, b *G.Node, axis int) *G.Node
	// Scatter returns x (last dimension D) with the rows numbered at
	// (counting over all but the last dimension) replaced, in order, by
	// the rows of src.
	Scatter(x, src *G.Node, at []int) *G.Node
	// Reshape gives x's values a new shape.
	Reshape(x *G.Node, shape ...int) *G.Node
	// Add and Mul are the elementwise sum and product of same-shaped
	// tensors (residuals, gates).
	Add(a, b *G.Node) *G.Node
	Mul(a, b *G.Node) *G.Node
	// Scale multiplies x by s.
	Scale(x *G.Node, s float32) *G.Node
	// Patches cuts images [N,C,H,W] into p×p patches [N,(H/p)·(W/p),C·p·p],
	// each flattened in (channel, row, column) order, row-major over the
	// grid.
	Patches(x *G.Node, p int) *G.Node
	// Barrier passes x through once check returns nil; a non-nil error
	// fails the run there (Graph.Checkpoint: cancellation between layers).
	Barrier(x *G.Node, check func() error) *G.Node
	// Device says where the values between these ops live ("cpu"; a GPU
	// implementation names its device). Graph inputs are host tensors an
	// implementation moves as it needs; nn.Value reads results back.
	Device() string

	// Embed looks up the rows of table for the int ids [B,T] -> [B,T,D].
	Embed(ids *G.Node, table *Weight) *G.Node
}

// AttentionSpec gives the head layout and scaling of an attention call.
type AttentionSpec struct {
	Heads, HeadDim int
	Scale          float32
}

// CPU implements Ops with this package's kernels, a BLAS backend for fp32
// products and, when the weights are bf16, a bf16 engine for the products
// with them. Activations, accumulation, norms and softmax are float32.
type CPU struct {
	BLAS blas.Backend
	// BF16 multiplies by bf16 weights; set when DType is BF16.
	BF16  bf16.Engine
	DType DType
	// Times, when set, collects the wall time of every op these ops add
	// to a graph from then on, by kind.
	Times *OpTimes
}

// NewCPU returns fp32 CPU ops over the given BLAS.
func NewCPU(b blas.Backend) *CPU { return &CPU{BLAS: b, DType: F32} }

// NewCPUBF16 returns CPU ops whose large matrices are bf16, multiplied by e.
func NewCPUBF16(b blas.Backend, e bf16.Engine) *CPU { return &CPU{BLAS: b, BF16: e, DType: BF16} }

// Name describes the ops, their BLAS and bf16 engine.
func (c *CPU) Name() string {
	if c.DType == BF16 {
		return "cpu bf16 (" + c.BF16.Name() + "; fp32: " + c.BLAS.Name() + ")"
	}
	return "cpu fp32 (" + c.BLAS.Name() + ")"
}

// WeightDType implements Ops.
func (c *CPU) WeightDType() DType {
	if c.DType == "" {
		return F32
	}
	return c.DType
}

// apply adds o to the graph, timed when c.Times is set.
func (c *CPU) apply(o *op, in ...*G.Node) *G.Node {
	o.times = c.Times
	return apply(o, in...)
}

// apply adds o to the graph. Building fails only on a programming error
// (types or arity), so it panics; shape errors surface when the graph runs.
func apply(o G.Op, in ...*G.Node) *G.Node {
	n, err := G.ApplyOp(o, in...)
	if err != nil {
		panic(fmt.Errorf("nn: building %s: %w", o, err))
	}
	return n
}

// Linear implements Ops.
func (c *CPU) Linear(x *G.Node, l *Linear) *G.Node {
	return c.apply(&op{
		name: "linear(" + l.W.Name + ")", inDims: []int{x.Dims()}, outDims: x.Dims(),
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if in[0][len(in[0])-1] != l.In {
				return nil, fmt.Errorf("linear %s: input width %d, want %d", l.W.Name, in[0][len(in[0])-1], l.In)
			}
			return lastDim(in[0], l.Out), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			if l.W.Half != nil {
				if c.BF16 == nil {
					return fmt.Errorf("linear %s: bf16 weights but no bf16 engine", l.W.Name)
				}
				var bias []float32
				if l.B != nil {
					bias = l.B.Data
				}
				c.BF16.MulT(f32(in[0]), rows(in[0].Shape()), l.W.Half, bias, out)
				return nil
			}
			linear(c.BLAS, l, f32(in[0]), rows(in[0].Shape()), out)
			return nil
		},
	}, x)
}

// Norm implements Ops.
func (c *CPU) Norm(x *G.Node, n *Norm) *G.Node {
	return c.apply(&op{
		name: "norm(" + n.Gamma.Name + ")", inDims: []int{x.Dims()}, outDims: x.Dims(),
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if in[0][len(in[0])-1] != n.Dim {
				return nil, fmt.Errorf("norm %s: input width %d, want %d", n.Gamma.Name, in[0][len(in[0])-1], n.Dim)
			}
			return in[0].Clone(), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			normalize(n, f32(in[0]), rows(in[0].Shape()), out)
			return nil
		},
	}, x)
}

// Activate implements Ops.
func (c *CPU) Activate(x *G.Node, a Activation) *G.Node {
	return c.apply(&op{
		name: string(a), inDims: []int{x.Dims()}, outDims: x.Dims(),
		shape: func(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil },
		do: func(in []*tensor.Dense, out []float32) error {
			activate(a, out, f32(in[0]))
			return nil
		},
	}, x)
}

// Attention implements Ops.
func (c *CPU) Attention(q, k, v, mask, bias *G.Node, spec AttentionSpec) *G.Node {
	inputs := []*G.Node{q, k, v}
	maskAt, biasAt := -1, -1
	if mask != nil {
		maskAt = len(inputs)
		inputs = append(inputs, mask)
	}
	if bias != nil {
		biasAt = len(inputs)
		inputs = append(inputs, bias)
	}
	dims := make([]int, len(inputs))
	for i, n := range inputs {
		dims[i] = n.Dims()
	}
	hd := spec.Heads * spec.HeadDim
	shapeOf := func(in []tensor.Shape) (AttentionShape, error) {
		qs, ks := in[0], in[1]
		s := AttentionShape{Batch: qs[0], Heads: spec.Heads, HeadDim: spec.HeadDim, Tq: qs[1], Tk: ks[1],
			Scale: spec.Scale}
		kb := ks[0]
		switch {
		case len(qs) != 3 || len(ks) != 3 || !ks.Eq(in[2]):
			return s, fmt.Errorf("attention: q %v, k %v, v %v are not [B,T,%d]", qs, ks, in[2], hd)
		case qs[2] != hd || ks[2] != hd || kb != s.Batch:
			return s, fmt.Errorf("attention: q %v and k %v disagree with %d heads of %d", qs, ks, spec.Heads, spec.HeadDim)
		case maskAt >= 0 && !in[maskAt].Eq(tensor.Shape{s.Batch, s.Tq, s.Tk}):
			return s, fmt.Errorf("attention: mask %v, want [%d %d %d]", in[maskAt], s.Batch, s.Tq, s.Tk)
		case biasAt >= 0 && !in[biasAt].Eq(tensor.Shape{s.Heads, s.Tq, s.Tk}):
			return s, fmt.Errorf("attention: bias %v, want [%d %d %d]", in[biasAt], s.Heads, s.Tq, s.Tk)
		}
		return s, nil
	}
	return c.apply(&op{
		name: "attention", inDims: dims, outDims: 3,
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if _, err := shapeOf(in); err != nil {
				return nil, err
			}
			return in[0].Clone(), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			shapes := make([]tensor.Shape, len(in))
			for i, d := range in {
				shapes[i] = d.Shape()
			}
			s, err := shapeOf(shapes)
			if err != nil {
				return err
			}
			var m, b []float32
			if maskAt >= 0 {
				m = f32(in[maskAt])
			}
			if biasAt >= 0 {
				b = f32(in[biasAt])
			}
			attention(c.BLAS, s, f32(in[0]), f32(in[1]), f32(in[2]), m, b, out)
			return nil
		},
	}, inputs...)
}

// Embed implements Ops.
func (c *CPU) Embed(ids *G.Node, table *Weight) *G.Node {
	dim := table.Shape[len(table.Shape)-1]
	vocab := table.Len() / dim
	return c.apply(&op{
		name: "embed(" + table.Name + ")", inDims: []int{ids.Dims()}, inTypes: []tensor.Dtype{tensor.Int}, outDims: ids.Dims() + 1,
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			return append(in[0].Clone(), dim), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			for i, id := range in[0].Data().([]int) {
				if id < 0 || id >= vocab {
					return fmt.Errorf("token id %d outside the vocabulary of %d (%s)", id, vocab, table.Name)
				}
				table.Row(id, out[i*dim:(i+1)*dim])
			}
			return nil
		},
	}, ids)
}

// NewKVCache implements Ops: the values live on the host, in bf16 when the
// weights are bf16 (as a bf16 model keeps its cache: half the memory) and
// in fp32 otherwise.
func (c *CPU) NewKVCache(layers, rows, slots, dim, capacity int) *KVCache {
	if c.DType == BF16 {
		return NewKVCacheBF16(layers, rows, slots, dim, capacity)
	}
	return NewKVCache(layers, rows, slots, dim, capacity)
}

// Device implements Ops.
func (c *CPU) Device() string { return "cpu" }
