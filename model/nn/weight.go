// Package nn holds the building blocks of the BLIP-2 networks: weights in
// fp32 or bf16, the custom Gorgonia ops that do the heavy work (linear
// layers, layer and RMS norms, activations, attention with its mask, KV-cache
// writes and cached attention, embedding lookup) and the light glue between
// them (slices, joins, splices, reshapes), their CPU kernels, the KV cache,
// and a graph runner that re-runs a compiled graph (a decode step).
//
// Weights live behind the ops rather than in Gorgonia tensors, and every op
// the models use is in the Ops interface, so another implementation of Ops
// (a GPU one) can stand in without any change to the model code.
package nn

import (
	"fmt"
	"math/rand/v2"

	"blipflow/model/bf16"
	"blipflow/model/safetensors"
)

// DType is the element type a weight matrix is stored in.
type DType string

// The weight dtypes.
const (
	F32  DType = "fp32"
	BF16 DType = "bf16"
)

// Weight is one parameter tensor of a model, row-major, stored either as
// float32 (Data, possibly a read-only view into a memory-mapped checkpoint)
// or as bfloat16 (Half, the tensor seen as a matrix of Shape[0] rows).
// Exactly one of Data and Half is set on a loaded weight.
type Weight struct {
	Name  string
	Shape []int
	Data  []float32
	Half  *bf16.Matrix
}

// DType returns the weight's storage type.
func (w *Weight) DType() DType {
	if w.Half != nil {
		return BF16
	}
	return F32
}

// Len returns the number of elements.
func (w *Weight) Len() int {
	if w.Half != nil {
		return w.Half.Rows * w.Half.Cols
	}
	return len(w.Data)
}

// Bytes returns the size of the stored values.
func (w *Weight) Bytes() int {
	if w.Half != nil {
		return 2 * w.Half.Rows * w.Half.Cols
	}
	return 4 * len(w.Data)
}

// Row copies row i of the weight seen as rows of len(dst) values into dst
// as float32 (a bf16 weight's rows are its matrix rows).
func (w *Weight) Row(i int, dst []float32) {
	if w.Half != nil {
		w.Half.Row(dst, i)
		return
	}
	n := len(dst)
	copy(dst, w.Data[i*n:(i+1)*n])
}

// Source supplies named float32 tensors (a checkpoint folder).
type Source interface {
	Float32(name string) ([]float32, []int, error)
	Has(name string) bool
}

// TypedSource is a Source that also tells each tensor's stored dtype
// (safetensors names: F32, F16, BF16, ...), hands out BF16 tensors without
// conversion and can drop a tensor's pages once converted (a memory-mapped
// checkpoint, safetensors.Dir).
type TypedSource interface {
	Source
	StoredDType(name string) string
	BF16(name string) ([]uint16, []int, error)
	F16(name string) ([]uint16, []int, error)
	Release(name string) error
}

// shapedSource is a Source that makes tensors of whatever shape is asked
// (RandomSource).
type shapedSource interface {
	Shaped(shape []int) []float32
	ShapedBF16(dst []uint16, shape []int) []uint16
}

// Loader reads weights from a Source, checking each shape, and remembers the
// first error so model constructors read as a list of tensors. Matrices
// (Linear weights, embedding tables) are stored in the loader's matrix dtype
// (see Matrices); other tensors (biases, norms) are always float32.
type Loader struct {
	src    Source
	prefix string
	err    *error
	matrix DType
	// scratch holds a tensor rounded to bf16 until it is packed (shared by
	// the loader's Subs, so conversion needs one tensor's worth of room).
	scratch *[]uint16
}

// NewLoader returns a Loader over src.
func NewLoader(src Source) *Loader {
	return &Loader{src: src, err: new(error), scratch: new([]uint16)}
}

// Err returns the first error met by this loader or any loader made from it
// with Sub.
func (l *Loader) Err() error { return *l.err }

// Sub returns a loader whose names are prefixed with p + ".", sharing the
// error state.
func (l *Loader) Sub(p string) *Loader {
	return &Loader{src: l.src, prefix: l.name(p), err: l.err, matrix: l.matrix, scratch: l.scratch}
}

// Matrices returns a loader like l whose matrices (and those of its Subs)
// are stored as dt.
func (l *Loader) Matrices(dt DType) *Loader {
	c := *l
	c.matrix = dt
	return &c
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

// Tensor loads the named tensor as float32 and checks it has the given
// shape.
func (l *Loader) Tensor(n string, shape ...int) *Weight {
	full := l.name(n)
	if *l.err != nil {
		return &Weight{Name: full, Shape: shape}
	}
	if r, ok := l.src.(shapedSource); ok {
		return &Weight{Name: full, Shape: shape, Data: r.Shaped(shape)}
	}
	if err := l.storable(full); err != nil {
		l.fail(err)
		return &Weight{Name: full, Shape: shape}
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

// storable checks the named tensor is stored in a dtype this build holds.
func (l *Loader) storable(full string) error {
	ts, ok := l.src.(TypedSource)
	if !ok {
		return nil
	}
	switch dt := ts.StoredDType(full); dt {
	case "F32", "F16", "BF16", "":
		return nil
	default:
		return fmt.Errorf("tensor %q is stored as %s, which this build cannot hold (F32, F16 or BF16)", full, dt)
	}
}

// Matrix loads the named tensor in the loader's matrix dtype, checking its
// shape. A bf16 matrix is packed at once into the layout the bf16 engines
// multiply from, so memory holds one copy of it: fp32 and fp16 tensors are
// rounded to bf16 one at a time in a reused buffer (and the checkpoint's
// pages of the original dropped), bf16 tensors are packed from the mapping.
func (l *Loader) Matrix(n string, shape ...int) *Weight {
	if l.matrix != BF16 {
		return l.Tensor(n, shape...)
	}
	full := l.name(n)
	w := &Weight{Name: full, Shape: shape}
	if *l.err != nil {
		return w
	}
	rows, cols := shape[0], 1
	for _, d := range shape[1:] {
		cols *= d
	}
	if r, ok := l.src.(shapedSource); ok {
		w.Half = bf16.NewMatrix(rows, cols, r.ShapedBF16(l.buffer(rows*cols), shape))
		w.Half.Pack()
		return w
	}
	if err := l.storable(full); err != nil {
		l.fail(err)
		return w
	}
	var half []uint16
	var got []int
	ts, typed := l.src.(TypedSource)
	switch {
	case typed && ts.StoredDType(full) == "BF16":
		var err error
		if half, got, err = ts.BF16(full); err != nil {
			l.fail(fmt.Errorf("missing tensor %q: %w", full, err))
			return w
		}
	case typed && ts.StoredDType(full) == "F16": // rounded in chunks: no float32 copy
		raw, g, err := ts.F16(full)
		if err != nil {
			l.fail(fmt.Errorf("missing tensor %q: %w", full, err))
			return w
		}
		got, half = g, l.buffer(len(raw))
		var buf [4096]float32
		for lo := 0; lo < len(raw); lo += len(buf) {
			chunk := buf[:min(len(buf), len(raw)-lo)]
			for i := range chunk {
				chunk[i] = safetensors.HalfToFloat32(raw[lo+i])
			}
			bf16.FromFloat32(half[lo:lo+len(chunk)], chunk)
		}
	default:
		data, g, err := l.src.Float32(full)
		if err != nil {
			l.fail(fmt.Errorf("missing tensor %q: %w", full, err))
			return w
		}
		got = g
		half = l.buffer(len(data))
		bf16.FromFloat32(half, data)
	}
	if !sameShape(got, shape) {
		l.fail(fmt.Errorf("tensor %q has shape %v, the config implies %v", full, got, shape))
		return w
	}
	w.Half = bf16.NewMatrix(rows, cols, half)
	w.Half.Pack()
	if typed {
		if err := ts.Release(full); err != nil {
			l.fail(err)
		}
	}
	return w
}

// buffer returns the loader's scratch space for n bf16 values.
func (l *Loader) buffer(n int) []uint16 {
	if cap(*l.scratch) < n {
		*l.scratch = make([]uint16, n)
	}
	return (*l.scratch)[:n]
}

// Linear loads name.weight [out,in] (a matrix, see Matrix) and, when bias is
// true, name.bias [out] (float32).
func (l *Loader) Linear(n string, in, out int, bias bool) *Linear {
	lin := &Linear{In: in, Out: out, W: l.Matrix(n+".weight", out, in)}
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

// ShapedBF16 fills dst (when long enough, else a new slice) with random
// data of the given shape rounded to bf16, made directly (no float32 copy
// of the whole tensor).
func (r *RandomSource) ShapedBF16(dst []uint16, shape []int) []uint16 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	out := dst
	if len(out) < n {
		out = make([]uint16, n)
	}
	out = out[:n]
	var buf [4096]float32
	for lo := 0; lo < n; lo += len(buf) {
		chunk := buf[:min(len(buf), n-lo)]
		for i := range chunk {
			chunk[i] = (r.rng.Float32()*2 - 1) * r.Scale
		}
		bf16.FromFloat32(out[lo:lo+len(chunk)], chunk)
	}
	return out
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
