package nn

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// op adapts one of this package's kernels to Gorgonia's Op interface. Each
// op value is unique (its hash includes its address), so Gorgonia never
// merges two applications of different weights to the same input.
type op struct {
	name    string
	inDims  []int
	inTypes []tensor.Dtype // nil means all Float32
	outDims int
	shape   func(in []tensor.Shape) (tensor.Shape, error)
	do      func(in []*tensor.Dense, out []float32) error
}

var _ G.Op = (*op)(nil)

func (o *op) Arity() int { return len(o.inDims) }

func (o *op) Type() hm.Type {
	ts := make([]hm.Type, 0, len(o.inDims)+1)
	for i, d := range o.inDims {
		dt := tensor.Float32
		if o.inTypes != nil {
			dt = o.inTypes[i]
		}
		ts = append(ts, G.TensorType{Dims: d, Of: dt})
	}
	ts = append(ts, G.TensorType{Dims: o.outDims, Of: tensor.Float32})
	return hm.NewFnType(ts...)
}

func (o *op) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	shapes := make([]tensor.Shape, len(in))
	for i, d := range in {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%s: input %d has no shape", o.name, i)
		}
		shapes[i] = s
	}
	return o.shape(shapes)
}

func (o *op) Do(vals ...G.Value) (G.Value, error) {
	in := make([]*tensor.Dense, len(vals))
	shapes := make([]tensor.Shape, len(vals))
	for i, v := range vals {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("%s: input %d is %T, want a dense tensor", o.name, i, v)
		}
		in[i], shapes[i] = d, d.Shape()
	}
	s, err := o.shape(shapes)
	if err != nil {
		return nil, err
	}
	out := make([]float32, s.TotalSize())
	if err := o.do(in, out); err != nil {
		return nil, fmt.Errorf("%s: %w", o.name, err)
	}
	return tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(out)), nil
}

func (o *op) ReturnsPtr() bool     { return false }
func (o *op) CallsExtern() bool    { return false }
func (o *op) OverwritesInput() int { return -1 }
func (o *op) String() string       { return o.name }

func (o *op) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s@%p", o.name, o) }

func (o *op) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// f32 returns the float32 backing of a dense tensor.
func f32(d *tensor.Dense) []float32 { return d.Data().([]float32) }

// lastDim replaces the last dimension of s with n.
func lastDim(s tensor.Shape, n int) tensor.Shape {
	out := s.Clone()
	out[len(out)-1] = n
	return out
}

// rows returns the product of all dimensions but the last.
func rows(s tensor.Shape) int {
	r := 1
	for _, d := range s[:len(s)-1] {
		r *= d
	}
	return r
}
