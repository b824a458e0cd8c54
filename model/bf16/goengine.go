package bf16

import (
	"fmt"
	"runtime"
	"sync"
)

//go:generate go run ./internal/asmgen -o kernel_amd64.s

// GoEngine is this package's own engine: AVX512-BF16 assembly kernels where
// the CPU has them (VDPBF16PS, x rounded to bf16 once per call), otherwise
// portable Go that widens the weights to fp32 (x kept in fp32). It reads
// each weight once per group of four rows of x, from Matrix.Data in the
// plain layout (no packed copy), and splits the output rows across
// goroutines. It is meant for the few rows of a decode step; it also runs
// any m, as the fallback when oneDNN is absent.
type GoEngine struct {
	threads int
	asm     bool
}

// NewGoEngine returns the Go engine using threads goroutines per product
// (0 means GOMAXPROCS at each call).
func NewGoEngine(threads int) *GoEngine {
	return &GoEngine{threads: threads, asm: haveBF16Kernel}
}

// Name implements Engine.
func (e *GoEngine) Name() string {
	kern := "pure Go kernels"
	if e.asm {
		kern = "go avx512_bf16 kernels"
	}
	if e.threads > 0 {
		return fmt.Sprintf("%s, %d threads", kern, e.threads)
	}
	return fmt.Sprintf("%s, GOMAXPROCS threads", kern)
}

// minWorkPerThread is the number of multiply-adds below which another
// goroutine costs more than it saves.
const minWorkPerThread = 1 << 17

var xPool = sync.Pool{New: func() any { return new([]uint16) }}

// MulT implements Engine.
func (e *GoEngine) MulT(x []float32, m int, w *Matrix, bias []float32, out []float32) {
	checkMulT(x, m, w, bias, out)
	if m == 0 {
		return
	}
	n, k := w.Rows, w.Cols
	threads := e.threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if most := m * n * k / minWorkPerThread; threads > most {
		threads = max(most, 1)
	}
	// Each goroutine gets a run of whole 4-row blocks.
	blocks := (n + 3) / 4
	threads = min(threads, blocks)

	var xb []uint16
	if e.asm {
		p := xPool.Get().(*[]uint16)
		defer xPool.Put(p)
		if cap(*p) < m*k {
			*p = make([]uint16, m*k)
		}
		xb = (*p)[:m*k]
		FromFloat32(xb, x[:m*k])
	}
	run := func(n0, n1 int) {
		if e.asm {
			mulRowsBF16(xb, m, w, n0, n1, out)
		} else {
			mulRowsGo(x, m, w, n0, n1, out)
		}
		if bias != nil {
			for i := range m {
				o := out[i*n+n0 : i*n+n1]
				for j, b := range bias[n0:n1] {
					o[j] += b
				}
			}
		}
	}
	if threads <= 1 {
		run(0, n)
		return
	}
	var wg sync.WaitGroup
	for t := range threads {
		n0 := blocks * t / threads * 4
		n1 := min(blocks*(t+1)/threads*4, n)
		if t == threads-1 {
			run(n0, n1)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(n0, n1)
		}()
	}
	wg.Wait()
}

// mulRowsGo computes out[i][j] for i < m and n0 <= j < n1 in portable Go:
// it widens a few weight rows at a time to fp32 and dots them with every
// row of x.
func mulRowsGo(x []float32, m int, w *Matrix, n0, n1 int, out []float32) {
	const rows = 4
	n, k := w.Rows, w.Cols
	tile := make([]float32, rows*k)
	for j0 := n0; j0 < n1; j0 += rows {
		j1 := min(j0+rows, n1)
		ToFloat32(tile, w.Data[j0*k:j1*k])
		for i := range m {
			xi := x[i*k : i*k+k]
			for j := j0; j < j1; j++ {
				out[i*n+j] = dotGo(xi, tile[(j-j0)*k:(j-j0+1)*k])
			}
		}
	}
}

// dotGo is a float32 dot product with four partial sums.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
