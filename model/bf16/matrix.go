package bf16

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Matrix is a weight matrix W [Rows=out][Cols=in], row-major bf16.
//
// Engines multiply from a packed copy of the weights, made once on the
// first MulT (or by Pack) and cached inside the Matrix; creating it is safe
// for concurrent use. To keep one copy of the weights in memory, packing
// releases Data (sets it to nil): read the weights with Row afterwards.
type Matrix struct {
	Rows, Cols int
	// Data is the row-major weights until the Matrix is packed, then nil.
	Data []uint16

	mu     sync.Mutex
	pk     atomic.Pointer[packedWeights]
	extras map[any]any // engine-specific state, keyed by the engine's key type
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

// Packing geometry: the packed layout stores the weights in blocks of
// blockN output rows; within a block, pairs of consecutive k for the blockN
// rows are contiguous (blockN·2 values, 256 bytes), k padded to blockK and
// the rows to blockN with zeros. Element (j, l) is at
//
//	(j/64)·kp·64 + (l/2)·128 + (j%64)·2 + l%2
//
// which is oneDNN's BA16a64b2a layout of the k×n matrix Wᵀ (the layout its
// avx512_core_bf16 matmul picks), so both engines share one packed copy.
const (
	blockN = 64
	blockK = 32
)

// packedWeights is a Matrix's weights in the packed layout.
type packedWeights struct {
	data   []uint16
	kp, np int // k and n rounded up to blockK and blockN
}

func roundUp(v, to int) int { return (v + to - 1) / to * to }

// packedIndex is the position of W[j][l] in the packed layout.
func packedIndex(j, l, kp int) int {
	return (j/blockN)*kp*blockN + (l/2)*2*blockN + (j%blockN)*2 + l%2
}

// Pack packs the weights now (rather than on the first MulT) and releases
// Data. It is safe for concurrent use and does nothing the second time.
func (w *Matrix) Pack() { w.packed() }

// Packed reports whether the weights are packed (and Data released).
func (w *Matrix) Packed() bool { return w.pk.Load() != nil }

// packed returns the packed weights, packing them on first use.
func (w *Matrix) packed() *packedWeights {
	if p := w.pk.Load(); p != nil {
		return p
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.pk.Load(); p != nil {
		return p
	}
	if len(w.Data) < w.Rows*w.Cols {
		panic(fmt.Sprintf("bf16: Matrix %d×%d has %d values", w.Rows, w.Cols, len(w.Data)))
	}
	p := pack(w.Data, w.Rows, w.Cols)
	w.pk.Store(p)
	w.Data = nil
	return p
}

// pack copies row-major data [n][k] into the packed layout, blocks spread
// over GOMAXPROCS goroutines.
func pack(data []uint16, n, k int) *packedWeights {
	p := &packedWeights{kp: roundUp(k, blockK), np: roundUp(n, blockN)}
	p.data = make([]uint16, p.kp*p.np)
	blocks := p.np / blockN
	workers := min(runtime.GOMAXPROCS(0), blocks)
	var wg sync.WaitGroup
	for t := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := blocks * t / workers; b < blocks*(t+1)/workers; b++ {
				packBlock(p, data, n, k, b)
			}
		}()
	}
	wg.Wait()
	return p
}

// packBlock packs the block of output rows b·64 .. b·64+63.
func packBlock(p *packedWeights, data []uint16, n, k, b int) {
	j0, j1 := b*blockN, min((b+1)*blockN, n)
	dst := p.data[b*p.kp*blockN : (b+1)*p.kp*blockN]
	if k%2 == 0 {
		// Move (w[2q], w[2q+1]) pairs as uint32s, in tiles of 16 pairs
		// by 64 rows: each row's 16 pairs are one cache line read, and the
		// tile's 4 KiB of output stays in L1.
		src32 := unsafe.Slice((*uint32)(unsafe.Pointer(&data[j0*k])), (j1-j0)*k/2)
		dst32 := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[0])), len(dst)/2)
		pairs := k / 2
		const tile = 16
		for q0 := 0; q0 < pairs; q0 += tile {
			q1 := min(q0+tile, pairs)
			for c := range j1 - j0 {
				row := src32[c*pairs : (c+1)*pairs]
				for q := q0; q < q1; q++ {
					dst32[q*blockN+c] = row[q]
				}
			}
		}
		return
	}
	for j := j0; j < j1; j++ {
		row := data[j*k : (j+1)*k]
		d := dst[(j-j0)*2:]
		l := 0
		for ; l+1 < k; l += 2 {
			d[l*blockN] = row[l]
			d[l*blockN+1] = row[l+1]
		}
		d[l*blockN] = row[l] // k is odd
	}
}

// Row widens row j of W (the weights of output j, Cols values) into dst,
// from Data or from the packed copy.
func (w *Matrix) Row(dst []float32, j int) {
	if j < 0 || j >= w.Rows {
		panic(fmt.Sprintf("bf16: Row(%d) of a Matrix with %d rows", j, w.Rows))
	}
	dst = dst[:w.Cols]
	if p := w.pk.Load(); p != nil {
		for l := range dst {
			dst[l] = Widen(p.data[packedIndex(j, l, p.kp)])
		}
		return
	}
	w.mu.Lock()
	data := w.Data
	w.mu.Unlock()
	if data == nil { // packed meanwhile
		w.Row(dst, j)
		return
	}
	ToFloat32(dst, data[j*w.Cols:(j+1)*w.Cols])
}

// extra returns the engine state stored under key, creating it with make on
// first use; make runs at most once per key and Matrix.
func (w *Matrix) extra(key any, make func() (any, error)) (any, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.extras[key]; ok {
		return v, nil
	}
	v, err := make()
	if err != nil {
		return nil, err
	}
	if w.extras == nil {
		w.extras = map[any]any{}
	}
	w.extras[key] = v
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
	}
}
