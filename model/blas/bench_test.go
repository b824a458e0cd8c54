package blas

import (
	"math/rand/v2"
	"testing"
)

// benchShapes are products the model runs: square references, the ViT-g MLP
// (hidden 1408, intermediate 6144) over a few images' tokens, and one OPT
// decode step through a 2560→10240 linear layer (weights stored out×in, so
// B is transposed).
var benchShapes = []struct {
	name    string
	m, n, k int
	transB  bool
}{
	{"square-256", 256, 256, 256, false},
	{"square-1024", 1024, 1024, 1024, false},
	{"vit-mlp-1408x6144x1408", 1408, 6144, 1408, true},
	{"decode-1x10240x2560", 1, 10240, 2560, true},
}

// forEachBenchBackend runs bench as sub-benchmark "gonum" and "openblas";
// the latter skips when the library is absent.
func forEachBenchBackend(b *testing.B, bench func(b *testing.B, backend Backend)) {
	b.Run("gonum", func(b *testing.B) { bench(b, Gonum{}) })
	b.Run("openblas", func(b *testing.B) {
		ob := loadOpenBLASOrSkip(b)
		b.Logf("%s", ob.Name())
		bench(b, ob)
	})
}

func BenchmarkSgemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	forEachBenchBackend(b, func(b *testing.B, backend Backend) {
		for _, s := range benchShapes {
			b.Run(s.name, func(b *testing.B) {
				ldb := s.n
				if s.transB {
					ldb = s.k
				}
				a := randomMatrix(rng, s.m*s.k)
				w := randomMatrix(rng, s.k*s.n)
				c := make([]float32, s.m*s.n)
				for b.Loop() {
					backend.Sgemm(false, s.transB, s.m, s.n, s.k, 1, a, s.k, w, ldb, 0, c, s.n)
				}
				b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	})
}

// BenchmarkSgemvDecode is the decode step of BenchmarkSgemm's
// decode-1x10240x2560 shape as a matrix-vector product.
func BenchmarkSgemvDecode(b *testing.B) {
	const rows, cols = 10240, 2560
	rng := rand.New(rand.NewPCG(3, 4))
	w := randomMatrix(rng, rows*cols)
	x := randomMatrix(rng, cols)
	y := make([]float32, rows)
	forEachBenchBackend(b, func(b *testing.B, backend Backend) {
		for b.Loop() {
			backend.Sgemv(false, rows, cols, 1, w, cols, x, 1, 0, y, 1)
		}
		b.ReportMetric(2*float64(rows)*float64(cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
