package bf16

import (
	"math"
	"math/rand/v2"
	"testing"
)

// segmentCase is random data for the segment kernels: x (fp32) and w
// (bf16) of n segments of seg, coefficients a at the given stride.
type segmentCase struct {
	x, a   []float32
	w      []uint16
	n      int
	seg    int
	stride int
}

func newSegmentCase(r *rand.Rand, n, seg, stride int) segmentCase {
	c := segmentCase{n: n, seg: seg, stride: stride, x: make([]float32, n*seg), w: make([]uint16, n*seg), a: make([]float32, (n-1)*stride+1)}
	for i := range c.x {
		c.x[i] = float32(r.NormFloat64())
		c.w[i] = Round(float32(r.NormFloat64()))
	}
	for i := range c.a {
		c.a[i] = float32(r.NormFloat64())
	}
	return c
}

// The kernels accumulate seg products in fp32 in some order: each partial
// sum is rounded by at most 2^-24 of itself, so the result is within
// seg·2^-24·Σ|x_i·w_i| of the exact sum (the products of bf16 and fp32 are
// exact in float64). The tests allow twice that.
func segmentBound(seg int, absSum float64) float64 {
	return 2 * float64(seg) * math.Pow(2, -24) * absSum
}

// checkDots checks out against the float64 sums of c.
func checkDots(t *testing.T, what string, c segmentCase, out []float32, scale float32) {
	t.Helper()
	for s := range c.n {
		var sum, abs float64
		for i := s * c.seg; i < (s+1)*c.seg; i++ {
			p := float64(c.x[i]) * float64(Widen(c.w[i]))
			sum, abs = sum+p, abs+math.Abs(p)
		}
		want, bound := float64(scale)*sum, math.Abs(float64(scale))*segmentBound(c.seg, abs)
		if d := math.Abs(float64(out[s*c.stride]) - want); d > bound {
			t.Fatalf("%s n=%d seg=%d: segment %d = %g, want %g (error %g > %g)", what, c.n, c.seg, s, out[s*c.stride], want, d, bound)
		}
	}
}

// checkAxpy checks y (which started as y0) against the float64 sums.
func checkAxpy(t *testing.T, what string, c segmentCase, y0, y []float32) {
	t.Helper()
	for i := range y {
		s := i / c.seg
		p := float64(c.a[s*c.stride]) * float64(Widen(c.w[i]))
		want := float64(y0[i]) + p
		// one product and one sum, each rounded (or one fused rounding)
		if bound := 2 * math.Pow(2, -24) * (math.Abs(float64(y0[i])) + math.Abs(p)); math.Abs(float64(y[i])-want) > bound {
			t.Fatalf("%s n=%d seg=%d: y[%d] = %g, want %g", what, c.n, c.seg, i, y[i], want)
		}
	}
}

// TestSegments checks DotSegments and AxpySegments against float64 sums,
// on segment widths the vector kernel takes (multiples of 16) and widths
// it leaves to the Go loop, and checks that nothing past the last
// segment's slot is written.
func TestSegments(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, shape := range [][3]int{{1, 16, 1}, {32, 80, 43}, {3, 64, 1}, {5, 8, 2}, {4, 88, 7}, {2, 17, 3}} {
		c := newSegmentCase(r, shape[0], shape[1], shape[2])
		out := make([]float32, len(c.a)+1)
		out[len(c.a)] = 7
		DotSegments(out, c.stride, c.x, c.w, c.seg, 0.125)
		checkDots(t, "DotSegments", c, out, 0.125)
		if out[len(c.a)] != 7 {
			t.Fatalf("DotSegments n=%d seg=%d wrote past its last segment", c.n, c.seg)
		}
		y0 := make([]float32, len(c.x))
		for i := range y0 {
			y0[i] = float32(r.NormFloat64())
		}
		y := append(append([]float32(nil), y0...), 7)
		AxpySegments(y[:len(y0)], c.a, c.stride, c.w, c.seg)
		checkAxpy(t, "AxpySegments", c, y0, y[:len(y0)])
		if y[len(y0)] != 7 {
			t.Fatalf("AxpySegments n=%d seg=%d wrote past its last segment", c.n, c.seg)
		}
		// the Go loops, which other CPUs and widths use
		clear(out)
		dotSegmentsGo(out, c.stride, c.x, c.w, c.n, c.seg, 0.125)
		checkDots(t, "dotSegmentsGo", c, out, 0.125)
		copy(y, y0)
		axpySegmentsGo(y[:len(y0)], c.a, c.stride, c.w, c.n, c.seg)
		checkAxpy(t, "axpySegmentsGo", c, y0, y[:len(y0)])
	}
	// empty input: nothing to do
	DotSegments(nil, 1, nil, nil, 16, 1)
	AxpySegments(nil, nil, 1, nil, 16)
}

func TestSegmentsRejectShortSlices(t *testing.T) {
	for name, fn := range map[string]func(){
		"w short":   func() { DotSegments(make([]float32, 2), 1, make([]float32, 32), make([]uint16, 16), 16, 1) },
		"out short": func() { DotSegments(make([]float32, 2), 2, make([]float32, 32), make([]uint16, 32), 16, 1) },
		"ragged":    func() { AxpySegments(make([]float32, 20), make([]float32, 2), 1, make([]uint16, 20), 16) },
		"a short":   func() { AxpySegments(make([]float32, 32), make([]float32, 1), 1, make([]uint16, 32), 16) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}
