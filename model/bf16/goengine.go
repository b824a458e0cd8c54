package bf16

import (
	"fmt"
	"runtime"
	"sync"
)

//go:generate go run ./internal/asmgen -o kernel_amd64.s

// GoEngine is this package's own engine. It multiplies from the packed
// weights (see Matrix) with AVX512-BF16 assembly where the CPU has it
// (VDPBF16PS; x rounded to bf16 once per call), with AVX-512F or AVX2
// assembly that widens the weights to fp32 where it has no AVX512_BF16,
// otherwise with portable Go (x kept in fp32 by all three). With
// VDPBF16PS a call reads each weight from memory once for up to six rows
// of x, and from cache for the next six; the output columns are split
// across goroutines in blocks of 64. It is built for the few rows of a
// decode step and runs any m, as the fallback when oneDNN is absent.
type GoEngine struct {
	threads int
	kernel  kernel
}

// kernel names the inner loops a GoEngine runs.
type kernel int

const (
	kernelGo   kernel = iota // portable Go, x in fp32
	kernelAVX2               // AVX2+FMA: weights widened to fp32, FMA, x in fp32
	kernelF32                // AVX-512F: the same in zmm registers
	kernelBF16               // AVX512_BF16: VDPBF16PS, x rounded to bf16
)

func (k kernel) String() string {
	return [...]string{"go portable kernels", "go avx2 fp32-fma kernels", "go avx512f fp32-fma kernels", "go avx512_bf16 kernels"}[k]
}

// bestKernel is the fastest kernel this CPU runs.
func bestKernel() kernel {
	switch {
	case haveBF16Kernel:
		return kernelBF16
	case haveF32Kernel:
		return kernelF32
	case haveAVX2Kernel:
		return kernelAVX2
	}
	return kernelGo
}

// NewGoEngine returns the Go engine using threads goroutines per product
// (0 means GOMAXPROCS at each call).
func NewGoEngine(threads int) *GoEngine {
	return &GoEngine{threads: threads, kernel: bestKernel()}
}

// Name implements Engine.
func (e *GoEngine) Name() string {
	kern := e.kernel.String()
	if e.threads > 0 {
		return fmt.Sprintf("%s, %d threads", kern, e.threads)
	}
	return fmt.Sprintf("%s, %d threads (GOMAXPROCS)", kern, runtime.GOMAXPROCS(0))
}

const (
	// minWorkPerThread is the number of multiply-adds below which another
	// goroutine costs more than it saves.
	minWorkPerThread = 1 << 17
	// kChunk is the k extent of one pass over a block when x has more rows
	// than one kernel call takes: 64 columns × 2048 k of bf16 is 256 KiB,
	// so the block stays in L2 while every group of rows goes over it, and
	// each group keeps its sums in registers over the whole chunk.
	kChunk = 2048
	// kernelRows is the most rows of x one kernel call takes.
	kernelRows = 6
)

var (
	xPool  = sync.Pool{New: func() any { return new([]uint16) }}
	xfPool = sync.Pool{New: func() any { return new([]float32) }}
)

// MulT implements Engine.
func (e *GoEngine) MulT(x []float32, m int, w *Matrix, bias []float32, out []float32) {
	checkMulT(x, m, w, bias, out)
	if m == 0 {
		return
	}
	pk := w.packed()
	n, k := w.Rows, w.Cols
	threads := e.threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if most := m * n * k / minWorkPerThread; threads > most {
		threads = max(most, 1)
	}
	blocks := pk.np / blockN
	threads = min(threads, blocks)

	var xb []uint16
	xf := x
	switch {
	case e.kernel == kernelBF16:
		// x in bf16, rows padded with zeros to kp.
		p := xPool.Get().(*[]uint16)
		defer xPool.Put(p)
		if cap(*p) < m*pk.kp {
			*p = make([]uint16, m*pk.kp)
		}
		xb = (*p)[:m*pk.kp]
		for i := range m {
			row := xb[i*pk.kp : (i+1)*pk.kp]
			FromFloat32(row, x[i*k:(i+1)*k])
			clear(row[k:])
		}
	case (e.kernel == kernelF32 || e.kernel == kernelAVX2) && k != pk.kp:
		// x rows padded with zeros to kp.
		p := xfPool.Get().(*[]float32)
		defer xfPool.Put(p)
		if cap(*p) < m*pk.kp {
			*p = make([]float32, m*pk.kp)
		}
		xf = (*p)[:m*pk.kp]
		for i := range m {
			row := xf[i*pk.kp : (i+1)*pk.kp]
			copy(row, x[i*k:(i+1)*k])
			clear(row[k:])
		}
	}
	run := func(b0, b1 int) {
		var scratch []float32
		for b := b0; b < b1; b++ {
			j0 := b * blockN
			cols := min(blockN, n-j0)
			// Start from the bias (or zero); the kernels accumulate.
			dst, ldo := out[j0:], n
			if cols < blockN {
				scratch = make([]float32, m*blockN)
				dst, ldo = scratch, blockN
			}
			for i := range m {
				o := dst[i*ldo : i*ldo+cols]
				if bias != nil {
					copy(o, bias[j0:j0+cols])
				} else {
					clear(o)
				}
			}
			wb := pk.data[b*pk.kp*blockN : (b+1)*pk.kp*blockN]
			switch e.kernel {
			case kernelBF16:
				mulBlockBF16(wb, xb, m, pk.kp, dst, ldo)
			case kernelF32:
				mulBlockF32(wb, xf, m, pk.kp, dst, ldo)
			case kernelAVX2:
				mulBlockAVX2(wb, xf, m, pk.kp, dst, ldo)
			default:
				mulBlockGo(wb, x, m, k, dst, ldo)
			}
			if cols < blockN {
				for i := range m {
					copy(out[i*n+j0:i*n+j0+cols], scratch[i*blockN:i*blockN+cols])
				}
			}
		}
	}
	if threads <= 1 {
		run(0, blocks)
		return
	}
	var wg sync.WaitGroup
	for t := range threads - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(blocks*t/threads, blocks*(t+1)/threads)
		}()
	}
	run(blocks*(threads-1)/threads, blocks)
	wg.Wait()
}

// mulBlockGo adds x·Wᵀ for one packed 64-column block wb into dst (m rows,
// row stride ldo, 64 columns) in portable Go, x in fp32 with row length k.
func mulBlockGo(wb []uint16, x []float32, m, k int, dst []float32, ldo int) {
	var acc [blockN]float32
	for i := range m {
		xi := x[i*k : (i+1)*k]
		clear(acc[:])
		for l := 0; l < k; l += 2 {
			pair := wb[l*blockN : l*blockN+2*blockN]
			x0 := xi[l]
			if l+1 < k {
				x1 := xi[l+1]
				for c := range acc {
					acc[c] += Widen(pair[2*c])*x0 + Widen(pair[2*c+1])*x1
				}
			} else {
				for c := range acc {
					acc[c] += Widen(pair[2*c]) * x0
				}
			}
		}
		o := dst[i*ldo:]
		for c := range min(blockN, len(o)) {
			o[c] += acc[c]
		}
	}
}
