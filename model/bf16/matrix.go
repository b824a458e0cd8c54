package bf16

import (
	"fmt"
	"sync"
)

// Matrix is a weight matrix W [Rows=out][Cols=in], row-major bf16.
//
// Engines may keep a reordered copy of the weights for their own layout,
// created once on first use and cached inside the Matrix (safe for
// concurrent use). The oneDNN engine multiplies from Data directly in the
// plain layout, so a Matrix holds one copy of its weights; see the engine's
// documentation for any packed copy it makes.
type Matrix struct {
	Rows, Cols int
	Data       []uint16

	mu     sync.Mutex
	packed map[any]any // engine-specific cached state, keyed by the engine's key type
}

// NewMatrix wraps data (rows·cols bf16 values, row-major) as a Matrix. It
// panics when data has the wrong length or a dimension is not positive.
func NewMatrix(rows, cols int, data []uint16) *Matrix {
	if rows <= 0 || cols <= 0 {
		panic(fmt.Sprintf("bf16: NewMatrix(%d, %d): dimensions must be positive", rows, cols))
	}
	if len(data) != rows*cols {
		panic(fmt.Sprintf("bf16: NewMatrix(%d, %d): %d values, want %d", rows, cols, len(data), rows*cols))
	}
	return &Matrix{Rows: rows, Cols: cols, Data: data}
}

// FromFloat32Matrix rounds a row-major fp32 matrix to a new bf16 Matrix.
func FromFloat32Matrix(rows, cols int, src []float32) *Matrix {
	if len(src) != rows*cols {
		panic(fmt.Sprintf("bf16: FromFloat32Matrix(%d, %d): %d values, want %d", rows, cols, len(src), rows*cols))
	}
	data := make([]uint16, len(src))
	FromFloat32(data, src)
	return NewMatrix(rows, cols, data)
}

// cached returns the state stored under key, creating it with make on first
// use. make runs at most once per key and Matrix.
func (w *Matrix) cached(key any, make func() (any, error)) (any, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.packed[key]; ok {
		return v, nil
	}
	v, err := make()
	if err != nil {
		return nil, err
	}
	if w.packed == nil {
		w.packed = map[any]any{}
	}
	w.packed[key] = v
	return v, nil
}

// checkMulT panics when the arguments of MulT do not describe valid
// matrices: these are programming errors, as in package blas.
func checkMulT(x []float32, m int, w *Matrix, bias, out []float32) {
	switch {
	case w == nil:
		panic("bf16: MulT: nil weight matrix")
	case m < 0:
		panic(fmt.Sprintf("bf16: MulT: m = %d", m))
	case len(x) < m*w.Cols:
		panic(fmt.Sprintf("bf16: MulT: x has %d values, want %d×%d", len(x), m, w.Cols))
	case len(out) < m*w.Rows:
		panic(fmt.Sprintf("bf16: MulT: out has %d values, want %d×%d", len(out), m, w.Rows))
	case bias != nil && len(bias) < w.Rows:
		panic(fmt.Sprintf("bf16: MulT: bias has %d values, want %d", len(bias), w.Rows))
	case len(w.Data) < w.Rows*w.Cols:
		panic(fmt.Sprintf("bf16: MulT: weights have %d values, want %d×%d", len(w.Data), w.Rows, w.Cols))
	}
}
