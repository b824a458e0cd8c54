// Package nn holds the building blocks of the BLIP-2 networks: weights, the
// custom Gorgonia ops that do the heavy work (linear layers, layer and RMS
// norms, activations, attention with its mask, KV-cache append, embedding
// lookup), their CPU kernels, and a small graph runner.
//
// Weights live behind the ops rather than in Gorgonia tensors, so another
// implementation of Ops (a GPU one holding bf16 copies) can stand in without
// any change to the model code.
package nn

import (
	"fmt"
	"math/rand/v2"
)

// Weight is one parameter tensor of a model, in float32 row-major order.
// Data may be a read-only view into a memory-mapped checkpoint.
type Weight struct {
	Name  string
	Shape []int
	Data  []float32
}

// Source supplies named float32 tensors (a checkpoint folder).
type Source interface {
	Float32(name string) ([]float32, []int, error)
	Has(name string) bool
}

// shapedSource is a Source that makes tensors of whatever shape is asked
// (RandomSource).
type shapedSource interface {
	Shaped(shape []int) []float32
}

// Loader reads weights from a Source, checking each shape, and remembers the
// first error so model constructors read as a list of tensors.
type Loader struct {
	src    Source
	prefix string
	err    *error
}

// NewLoader returns a Loader over src.
func NewLoader(src Source) *Loader { return &Loader{src: src, err: new(error)} }

// Err returns the first error met by this loader or any loader made from it
// with Sub.
func (l *Loader) Err() error { return *l.err }

// Sub returns a loader whose names are prefixed with p + ".", sharing the
// error state.
func (l *Loader) Sub(p string) *Loader {
	return &Loader{src: l.src, prefix: l.name(p), err: l.err}
}

func (l *Loader) name(n string) string {
	if l.prefix == "" {
		return n
	}
	return l.prefix + "." + n
}

func (l *Loader) fail(err error) {
	if *l.err == nil {
		*l.err = err
	}
}

// Has reports whether the tensor exists.
func (l *Loader) Has(n string) bool { return l.src.Has(l.name(n)) }

// Tensor loads the named tensor and checks it has the given shape.
func (l *Loader) Tensor(n string, shape ...int) *Weight {
	full := l.name(n)
	if *l.err != nil {
		return &Weight{Name: full, Shape: shape}
	}
	if r, ok := l.src.(shapedSource); ok {
		return &Weight{Name: full, Shape: shape, Data: r.Shaped(shape)}
	}
	data, got, err := l.src.Float32(full)
	if err != nil {
		l.fail(fmt.Errorf("missing tensor %q: %w", full, err))
		return &Weight{Name: full, Shape: shape}
	}
	if !sameShape(got, shape) {
		l.fail(fmt.Errorf("tensor %q has shape %v, the config implies %v", full, got, shape))
		return &Weight{Name: full, Shape: shape}
	}
	return &Weight{Name: full, Shape: got, Data: data}
}

// Linear loads name.weight [out,in] and, when bias is true, name.bias [out].
func (l *Loader) Linear(n string, in, out int, bias bool) *Linear {
	lin := &Linear{In: in, Out: out, W: l.Tensor(n+".weight", out, in)}
	if bias {
		lin.B = l.Tensor(n+".bias", out)
	}
	return lin
}

// LayerNorm loads name.weight and name.bias of size dim.
func (l *Loader) LayerNorm(n string, dim int, eps float64) *Norm {
	return &Norm{Dim: dim, Eps: float32(eps), Gamma: l.Tensor(n+".weight", dim), Beta: l.Tensor(n+".bias", dim)}
}

// RMSNorm loads name.weight of size dim.
func (l *Loader) RMSNorm(n string, dim int, eps float64) *Norm {
	return &Norm{Dim: dim, Eps: float32(eps), Gamma: l.Tensor(n+".weight", dim), RMS: true}
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Linear is y = x Wᵀ + b with W of shape [Out, In].
type Linear struct {
	In, Out int
	W, B    *Weight
}

// Norm is a layer norm (Gamma, Beta) or, when RMS is set, T5's RMS norm
// (Gamma only, no mean subtraction).
type Norm struct {
	Dim         int
	Eps         float32
	Gamma, Beta *Weight
	RMS         bool
}

// RandomSource makes weights of any requested shape from a seeded generator,
// so a model of a real checkpoint's shape can be built without its file.
type RandomSource struct {
	rng   *rand.Rand
	Scale float32
	// Absent lists tensor names the source reports missing, so optional
	// weights (an untied head, say) can be left out.
	Absent map[string]bool
}

// NewRandomSource returns a RandomSource drawing uniform values in
// [-scale, scale].
func NewRandomSource(seed uint64, scale float32) *RandomSource {
	return &RandomSource{rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), Scale: scale}
}

// Has reports whether the tensor is made (every name not in Absent).
func (r *RandomSource) Has(name string) bool { return !r.Absent[name] }

// Float32 fails: a RandomSource only makes tensors of a known shape (Shaped).
func (r *RandomSource) Float32(name string) ([]float32, []int, error) {
	return nil, nil, fmt.Errorf("random source: tensor %q needs a shape", name)
}

// Shaped returns random data of the given shape.
func (r *RandomSource) Shaped(shape []int) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = (r.rng.Float32()*2 - 1) * r.Scale
	}
	return out
}
