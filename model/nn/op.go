package nn

import (
	"fmt"
	"hash"
	"hash/fnv"
	"time"

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
	// run, when set instead of do, makes the output itself (another
	// backend's op that downloads its result); such ops call out of Go.
	run func(in []*tensor.Dense, out tensor.Shape) ([]float32, error)
	// times, when set, collects the op's wall time (CPU.Times).
	times *OpTimes
}

// OpFunc describes an op that another backend (a GPU one) computes from host
// tensors, so it can join the same graphs as this package's ops.
type OpFunc struct {
	Name    string
	InDims  []int
	InTypes []tensor.Dtype // nil means all Float32
	OutDims int
	Shape   func(in []tensor.Shape) (tensor.Shape, error)
	Run     func(in []*tensor.Dense, out tensor.Shape) ([]float32, error)
}

// ApplyFunc adds f to the graph of its inputs. Like the ops of this
// package, it panics only on a programming error (types or arity).
func ApplyFunc(f OpFunc, in ...*G.Node) *G.Node {
	return apply(&op{name: f.Name, inDims: f.InDims, inTypes: f.InTypes, outDims: f.OutDims, shape: f.Shape, run: f.Run}, in...)
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
	if o.times != nil {
		defer func(start time.Time) { o.times.add(o.name, time.Since(start)) }(time.Now())
	}
	var out []float32
	if o.run != nil {
		out, err = o.run(in, s)
	} else {
		out = make([]float32, s.TotalSize())
		err = o.do(in, out)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.name, err)
	}
	return tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(out)), nil
}

func (o *op) ReturnsPtr() bool     { return false }
func (o *op) CallsExtern() bool    { return o.run != nil }
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
