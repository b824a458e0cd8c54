package nn

import (
	"testing"

	"blipflow/model/blas"
)

// BenchmarkAttention times one ViT-g self-attention (16 heads of 88 over
// 257 tokens) on each available BLAS.
func BenchmarkAttention(b *testing.B) {
	s := AttentionShape{Batch: 1, Heads: 16, HeadDim: 88, Tq: 257, Tk: 257, Scale: 0.1}
	n := s.Batch * s.Tq * s.Heads * s.HeadDim
	src := NewRandomSource(1, 1)
	q, k, v := src.Shaped([]int{n}), src.Shaped([]int{n}), src.Shaped([]int{n})
	out := make([]float32, n)
	backends := map[string]blas.Backend{"go": blas.Gonum{}}
	if ob, _, err := blas.Load(blas.Options{Backend: blas.KindOpenBLAS}); err == nil {
		backends["openblas"] = ob
	}
	for name, bl := range backends {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				attention(bl, s, q, k, v, nil, nil, out)
			}
			flop := 4 * float64(s.Tq*s.Tk*s.Heads*s.HeadDim)
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
