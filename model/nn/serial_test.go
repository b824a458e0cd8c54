package nn

import (
	"math"
	"testing"

	"blipflow/model/blas"
)

// TestSerialOpenBLASSplits checks the products the ops spread over the cores
// when OpenBLAS runs single-threaded (as OpenCPU sets it with bf16
// weights): linear layers split by output columns (sgemm and, for one or
// two rows, sgemv) and attention split by heads give what one threaded
// OpenBLAS call gives.
func TestSerialOpenBLASSplits(t *testing.T) {
	ob, err := blas.LoadOpenBLAS(blas.Options{})
	if err != nil {
		t.Skipf("OpenBLAS not available (run .ci/install-openblas.sh as root): %v", err)
	}
	threads := ob.Threads()
	defer ob.SetThreads(threads)
	rng := NewRandomSource(7, 1)
	l := &Linear{In: 300, Out: 1000,
		W: &Weight{Name: "w", Shape: []int{1000, 300}, Data: rng.Shaped([]int{1000, 300})},
		B: &Weight{Name: "b", Shape: []int{1000}, Data: rng.Shaped([]int{1000})}}
	s := AttentionShape{Batch: 2, Heads: 4, HeadDim: 16, Tq: 37, Tk: 37, Scale: 0.25}
	q, k, v := rng.Shaped([]int{2 * 37 * 64}), rng.Shaped([]int{2 * 37 * 64}), rng.Shaped([]int{2 * 37 * 64})
	run := func(n int) (lin [][]float32, att []float32) {
		ob.SetThreads(n)
		if got := SerialBLAS(ob); got != (n == 1) {
			t.Fatalf("SerialBLAS with %d threads = %v", n, got)
		}
		for _, rows := range []int{1, 2, 7, 64} {
			x := rng.Shaped([]int{rows * l.In})
			out := make([]float32, rows*l.Out)
			linear(ob, l, x, rows, out)
			lin = append(lin, out)
		}
		att = make([]float32, len(q))
		attention(ob, s, q, k, v, nil, nil, att)
		return lin, att
	}
	// The same random inputs for both runs.
	rng = NewRandomSource(8, 1)
	wantLin, wantAtt := run(2)
	rng = NewRandomSource(8, 1)
	gotLin, gotAtt := run(1)
	for i := range wantLin {
		if d := maxRelDiff(gotLin[i], wantLin[i]); d > 1e-6 {
			t.Errorf("linear case %d: serial OpenBLAS differs by %g (relative to the largest value)", i, d)
		}
	}
	if d := maxRelDiff(gotAtt, wantAtt); d > 1e-6 {
		t.Errorf("attention: serial OpenBLAS differs by %g", d)
	}
}

// maxRelDiff is the largest |a-b| relative to the largest |b|.
func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / m
}
