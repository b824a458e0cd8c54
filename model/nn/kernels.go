package nn

import (
	"math"
	"runtime"
	"sync"

	"blipflow/model/blas"
)

// parallel runs fn over [0,n) split into contiguous chunks, one per worker.
// Work smaller than minChunk per worker runs on the calling goroutine.
func parallel(n, minChunk int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n/max(minChunk, 1) {
		workers = n / max(minChunk, 1)
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// linear computes out[rows,Out] = x[rows,In] Wᵀ + b. With a
// single-threaded OpenBLAS (see SerialBLAS) the output columns are split
// across the cores here.
func linear(bl blas.Backend, l *Linear, x []float32, rows int, out []float32) {
	if l.B != nil {
		for r := 0; r < rows; r++ {
			copy(out[r*l.Out:(r+1)*l.Out], l.B.Data)
		}
	}
	beta := float32(0)
	if l.B != nil {
		beta = 1
	}
	minCols := l.Out // one call
	if SerialBLAS(bl) {
		// Enough multiply-adds per goroutine to pay for it.
		minCols = max(16, (1<<17)/max(rows*l.In, 1))
	}
	parallel(l.Out, minCols, func(j0, j1 int) {
		w := l.W.Data[j0*l.In:]
		if rows <= 2 { // matrix-vector products read W at memory speed; a skinny GEMM does not
			for r := 0; r < rows; r++ {
				bl.Sgemv(false, j1-j0, l.In, 1, w, l.In, x[r*l.In:(r+1)*l.In], 1, beta, out[r*l.Out+j0:r*l.Out+j1], 1)
			}
			return
		}
		bl.Sgemm(false, true, rows, j1-j0, l.In, 1, x, l.In, w, l.In, beta, out[j0:], l.Out)
	})
}

// SerialBLAS reports whether bl runs each call on the calling thread
// alone, so that callers should spread independent calls over the cores
// (OpenBLAS set to one thread; see OpenCPU).
func SerialBLAS(bl blas.Backend) bool {
	ob, ok := bl.(*blas.OpenBLAS)
	return ok && ob.Threads() == 1
}

// normalize applies a layer norm or RMS norm to each row of x (normRow,
// elementwise.go).
func normalize(n *Norm, x []float32, rows int, out []float32) {
	d := n.Dim
	parallel(rows, max(1, (1<<15)/max(d, 1)), func(lo, hi int) { // 32K values per goroutine
		for r := lo; r < hi; r++ {
			normRow(n, x[r*d:(r+1)*d], out[r*d:(r+1)*d])
		}
	})
}

// Activation names the supported nonlinearities (Hugging Face's names).
type Activation string

// Activations.
const (
	GELU      Activation = "gelu"       // exact, with erf
	GELUTanh  Activation = "gelu_new"   // tanh approximation
	QuickGELU Activation = "quick_gelu" // x·σ(1.702x)
	ReLU      Activation = "relu"
)

// ActivationByName maps a config's activation name to an Activation.
func ActivationByName(name string) (Activation, bool) {
	switch name {
	case "gelu":
		return GELU, true
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return GELUTanh, true
	case "quick_gelu":
		return QuickGELU, true
	case "relu":
		return ReLU, true
	}
	return "", false
}

// activate writes a(src) to dst, each goroutine copying its part and
// applying a in place while it is in cache.
func activate(a Activation, dst, src []float32) {
	parallel(len(dst), 1<<14, func(lo, hi int) {
		s := dst[lo:hi]
		copy(s, src[lo:hi])
		switch a {
		case GELU:
			geluErf(s)
		case GELUTanh:
			geluTanh(s)
		case QuickGELU:
			quickGELU(s)
		case ReLU:
			relu(s)
		}
	})
}

// erf32 is a float32 rational approximation of erf (max error a few ulp),
// much faster than math.Erf in float64.
func erf32(x float32) float32 {
	if x > 4 {
		x = 4
	} else if x < -4 {
		x = -4
	}
	x2 := x * x
	p := x2*-2.72614225801306e-10 + 2.77068142495902e-08
	p = p*x2 - 2.10102402082508e-06
	p = p*x2 - 5.69250639462346e-05
	p = p*x2 - 7.34990630326855e-04
	p = p*x2 - 2.95459980854025e-03
	p = p*x2 - 1.60960333262415e-02
	p *= x
	q := x2*-1.45660718464996e-05 - 2.13374055278905e-04
	q = q*x2 - 1.68282697438203e-03
	q = q*x2 - 7.37332916720468e-03
	q = q*x2 - 1.42647390514189e-02
	return p / q
}

// softmaxRowGo replaces s with softmax(s), computed stably; softmaxRow
// (elementwise.go) runs it where no vector kernel can.
func softmaxRowGo(s []float32) {
	m := s[0]
	for _, v := range s[1:] {
		if v > m {
			m = v
		}
	}
	var sum float32
	for i, v := range s {
		e := exp32(v - m)
		s[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range s {
		s[i] *= inv
	}
}

// exp32 is a float32 exp for x <= 0 (softmax arguments), accurate to a few
// ulp and several times faster than math.Exp: x = k·ln2 + r with |r| <=
// ln2/2, exp(r) by its Taylor polynomial, 2^k put in the exponent bits.
func exp32(x float32) float32 {
	if x < -87 {
		return 0
	}
	const log2e, ln2hi, ln2lo = 1.44269504088896341, 0.693359375, -2.12194440e-4
	k := float32(int32(x*log2e - 0.5))
	if x*log2e >= 0 {
		k = float32(int32(x*log2e + 0.5))
	}
	r := x - k*ln2hi - k*ln2lo
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r*r + r + 1
	return math.Float32frombits(math.Float32bits(p) + uint32(int32(k))<<23)
}

// AttentionShape describes one multi-head attention call.
type AttentionShape struct {
	Batch, Heads, HeadDim int
	Tq, Tk                int
	// Scale multiplies q·k before the mask is added (1/sqrt(HeadDim) for
	// most models, 1 for T5).
	Scale float32
	// KVTimeMajor says k and v are laid out [Tk, Batch, Heads*HeadDim] (a KV
	// cache) rather than [Batch, Tk, Heads*HeadDim].
	KVTimeMajor bool
}

// attention computes softmax(scale·q·kᵀ + mask + bias)·v per batch row and
// head. q and out are [Batch, Tq, Heads*HeadDim]; mask, when given, is
// additive [Batch, Tq, Tk]; bias, when given, is additive [Heads, Tq, Tk].
func attention(bl blas.Backend, s AttentionShape, q, k, v, mask, bias, out []float32) {
	hd := s.Heads * s.HeadDim
	ldkv, strideB := hd, s.Tk*hd
	if s.KVTimeMajor {
		ldkv, strideB = s.Batch*hd, hd
	}
	parallel(s.Batch*s.Heads, attnChunk(bl), func(lo, hi int) {
		scores := make([]float32, s.Tq*s.Tk)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/s.Heads, bh%s.Heads
			qo := b*s.Tq*hd + h*s.HeadDim
			ko := b*strideB + h*s.HeadDim
			bl.Sgemm(false, true, s.Tq, s.Tk, s.HeadDim, s.Scale, q[qo:], hd, k[ko:], ldkv, 0, scores, s.Tk)
			if mask != nil {
				m := mask[b*s.Tq*s.Tk : (b+1)*s.Tq*s.Tk]
				for i := range scores {
					scores[i] += m[i]
				}
			}
			if bias != nil {
				bb := bias[h*s.Tq*s.Tk : (h+1)*s.Tq*s.Tk]
				for i := range scores {
					scores[i] += bb[i]
				}
			}
			parallel(s.Tq, 16, func(lo, hi int) {
				for t := lo; t < hi; t++ {
					softmaxRow(scores[t*s.Tk : (t+1)*s.Tk])
				}
			})
			bl.Sgemm(false, false, s.Tq, s.HeadDim, s.Tk, 1, scores, s.Tk, v[ko:], ldkv, 0, out[qo:], hd)
		}
	})
}

// attnChunk is the least number of heads per goroutine in attention: a
// multithreaded BLAS already uses every core for each product, and calling
// it from several goroutines at once oversubscribes them.
func attnChunk(bl blas.Backend) int {
	if _, ob := bl.(*blas.OpenBLAS); ob && !SerialBLAS(bl) {
		return 1 << 30
	}
	return 1
}
