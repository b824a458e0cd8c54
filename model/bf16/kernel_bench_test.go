//go:build amd64 && !purego

package bf16

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkKernelL1 times one call of the assembly kernel on data that stays
// in L1 (a 64×256 block), one thread: the kernel's compute peak.
func BenchmarkKernelL1(b *testing.B) {
	if !haveBF16Kernel {
		b.Skip("no AVX512_BF16")
	}
	const kp = 256
	w := make([]uint16, kp*blockN)
	for mr := 1; mr <= kernelRows; mr++ {
		x := make([]uint16, mr*kp)
		out := make([]float32, mr*blockN)
		b.Run(fmt.Sprintf("mr=%d", mr), func(b *testing.B) {
			// The fastest of batches of 20 calls: other processes on the
			// machine only ever make a batch slower.
			best := time.Duration(1 << 62)
			for b.Loop() {
				t0 := time.Now()
				for range 20 {
					dotPacked(&w[0], &x[0], kp, kp/2, mr, &out[0], blockN)
				}
				best = min(best, time.Since(t0))
			}
			ns := float64(best.Nanoseconds()) / 20
			b.ReportMetric(2*float64(mr*kp*blockN)/ns, "GFLOP/s")
		})
	}
	for mr := 1; mr <= maxRowsF32; mr++ {
		x := make([]float32, mr*kp)
		out := make([]float32, mr*blockN)
		b.Run(fmt.Sprintf("f32/mr=%d", mr), func(b *testing.B) {
			best := time.Duration(1 << 62)
			for b.Loop() {
				t0 := time.Now()
				for range 20 {
					dotPackedF32(&w[0], &x[0], kp, kp/2, mr, &out[0], blockN)
				}
				best = min(best, time.Since(t0))
			}
			ns := float64(best.Nanoseconds()) / 20
			b.ReportMetric(2*float64(mr*kp*blockN)/ns, "GFLOP/s")
		})
	}
}
