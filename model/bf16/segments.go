package bf16

import "fmt"

// DotSegments computes, for each segment s of width seg of x (len(x)/seg of
// them), out[s·stride] = scale · Σ x[s·seg+i]·w[s·seg+i] with w in bf16,
// accumulating in fp32: the per-head scores of one query against one key
// row of a bf16 KV cache. w must be as long as x.
func DotSegments(out []float32, stride int, x []float32, w []uint16, seg int, scale float32) {
	n := checkSegments("DotSegments", out, stride, x, w, seg)
	if n == 0 {
		return
	}
	if haveSegmentsAVX512 && seg%16 == 0 {
		dotSegmentsAVX512(&out[0], stride, &x[0], &w[0], n, seg, scale)
		return
	}
	dotSegmentsGo(out, stride, x, w, n, seg, scale)
}

func dotSegmentsGo(out []float32, stride int, x []float32, w []uint16, n, seg int, scale float32) {
	for s := range n {
		var sum float32
		for i, v := range w[s*seg : (s+1)*seg] {
			sum += x[s*seg+i] * Widen(v)
		}
		out[s*stride] = scale * sum
	}
}

// AxpySegments adds, for each segment s of width seg of y (len(y)/seg of
// them), a[s·stride] · w[s·seg:(s+1)·seg] (w in bf16) to y's segment: the
// per-head weighted sum of one value row of a bf16 KV cache. w must be as
// long as y.
func AxpySegments(y []float32, a []float32, stride int, w []uint16, seg int) {
	n := checkSegments("AxpySegments", a, stride, y, w, seg)
	if n == 0 {
		return
	}
	if haveSegmentsAVX512 && seg%16 == 0 {
		axpySegmentsAVX512(&y[0], &a[0], stride, &w[0], n, seg)
		return
	}
	axpySegmentsGo(y, a, stride, w, n, seg)
}

func axpySegmentsGo(y []float32, a []float32, stride int, w []uint16, n, seg int) {
	for s := range n {
		c := a[s*stride]
		for i, v := range w[s*seg : (s+1)*seg] {
			y[s*seg+i] += c * Widen(v)
		}
	}
}

// checkSegments returns the number of segments, panicking when the slices
// cannot hold them (the assembly kernels do not check).
func checkSegments(fn string, per []float32, stride int, x []float32, w []uint16, seg int) int {
	if seg <= 0 || len(x)%seg != 0 || len(w) < len(x) || stride < 1 {
		panic(fmt.Sprintf("bf16.%s: %d values in segments of %d (stride %d) against %d bf16", fn, len(x), seg, stride, len(w)))
	}
	n := len(x) / seg
	if n > 0 && len(per) < (n-1)*stride+1 {
		panic(fmt.Sprintf("bf16.%s: %d segments at stride %d need %d coefficients, have %d", fn, n, stride, (n-1)*stride+1, len(per)))
	}
	return n
}
