package blas

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// measureRuns is how many timed products MeasureGFLOPS takes the best of.
const measureRuns = 3

// MeasureGFLOPS times b multiplying two random n×n matrices (one untimed
// warm-up, then the best of three runs) and returns the achieved rate in
// GFLOP/s, counting 2n³ floating-point operations per product. Model
// benchmarks quote it as the machine's attainable matrix-product rate.
func MeasureGFLOPS(b Backend, n int) float64 {
	if n < 1 {
		panic(fmt.Sprintf("blas: MeasureGFLOPS size %d, want >= 1", n))
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	x := randomMatrix(rng, n*n)
	y := randomMatrix(rng, n*n)
	z := make([]float32, n*n)
	b.Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
	best := time.Duration(1<<63 - 1)
	for range measureRuns {
		start := time.Now()
		b.Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
		best = min(best, time.Since(start))
	}
	return GFLOPS(n, n, n, best)
}

// GFLOPS is the rate of one m×k by k×n product taking d, in GFLOP/s.
func GFLOPS(m, n, k int, d time.Duration) float64 {
	return 2 * float64(m) * float64(n) * float64(k) / d.Seconds() / 1e9
}

// randomMatrix returns n values uniform in [-1, 1).
func randomMatrix(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*rng.Float32() - 1
	}
	return s
}
