package bf16

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// namedEngine is an engine under test.
type namedEngine struct {
	name string
	e    Engine
}

// testEngines lists every engine this machine can run.
func testEngines(t testing.TB) []namedEngine {
	es := []namedEngine{{"go-portable", &GoEngine{threads: 2, kernel: kernelGo}}}
	if haveAVX2Kernel {
		es = append(es, namedEngine{"go-avx2", &GoEngine{threads: 2, kernel: kernelAVX2}})
	} else {
		t.Logf("no AVX2 here: the avx2 assembly kernel is not tested")
	}
	if haveF32Kernel {
		es = append(es, namedEngine{"go-avx512f", &GoEngine{threads: 2, kernel: kernelF32}})
	} else {
		t.Logf("no AVX-512 here: the fp32 assembly kernel is not tested")
	}
	if haveBF16Kernel {
		es = append(es, namedEngine{"go-avx512bf16", &GoEngine{threads: 2, kernel: kernelBF16}},
			namedEngine{"go-avx512bf16-1thread", &GoEngine{threads: 1, kernel: kernelBF16}},
			namedEngine{"go-avx512bf16-5threads", &GoEngine{threads: 5, kernel: kernelBF16}})
	} else {
		t.Logf("no AVX512_BF16 here: the bf16 assembly kernel is not tested")
	}
	es = append(es, oneDNNTestEngines(t)...)
	return es
}

// problem is one random product with inputs exactly representable in bf16.
type problem struct {
	m, n, k int
	x       []float32
	w       *Matrix
	wd      []uint16 // the weights row-major (w.Data is released on packing)
	bias    []float32
}

func newProblem(r *rand.Rand, m, n, k int, withBias bool) problem {
	p := problem{m: m, n: n, k: k, x: make([]float32, m*k)}
	for i := range p.x {
		p.x[i] = Widen(Round(float32(r.NormFloat64())))
	}
	wf := make([]float32, n*k)
	for i := range wf {
		wf[i] = float32(r.NormFloat64() * 0.05)
	}
	p.w = FromFloat32Matrix(n, k, wf)
	p.wd = append([]uint16(nil), p.w.Data...)
	if withBias {
		p.bias = make([]float32, n)
		for i := range p.bias {
			p.bias[i] = float32(r.NormFloat64())
		}
	}
	return p
}

// reference returns the exact (float64) product of the bf16 values and, per
// element, sum_k |x||w|, the scale of the accumulation error.
func (p problem) reference() (want, scale []float64) {
	want, scale = make([]float64, p.m*p.n), make([]float64, p.m*p.n)
	for i := range p.m {
		for j := range p.n {
			var s, a float64
			for l := range p.k {
				prod := float64(p.x[i*p.k+l]) * float64(Widen(p.wd[j*p.k+l]))
				s += prod
				a += math.Abs(prod)
			}
			if p.bias != nil {
				s += float64(p.bias[j])
				a += math.Abs(float64(p.bias[j]))
			}
			want[i*p.n+j], scale[i*p.n+j] = s, a
		}
	}
	return want, scale
}

// check compares out with the reference. Products of two bf16 values are
// exact in fp32 (8+8 significant bits < 24), so the only error is fp32
// accumulation: at most about k·2^-24·sum|x·w| in the worst case, far less
// on average (random signs give sqrt(k)). The bound used, (k+2)·2^-24·sum,
// is the worst-case bound plus the bias addition.
//
// It returns the largest error as a fraction of the bound.
func (p problem) check(t *testing.T, name string, out []float32) float64 {
	t.Helper()
	want, scale := p.reference()
	tol := float64(p.k+2) * math.Pow(2, -24)
	bad := 0
	worst := 0.0
	for i, w := range want {
		d := math.Abs(float64(out[i]) - w)
		if scale[i] > 0 {
			worst = max(worst, d/(tol*scale[i]))
		}
		if !(d <= tol*scale[i]+1e-30) {
			if bad < 5 {
				t.Errorf("%s m=%d n=%d k=%d: out[%d][%d] = %g, want %g (error %g > %g)",
					name, p.m, p.n, p.k, i/p.n, i%p.n, out[i], w, d, tol*scale[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d outputs out of tolerance", name, bad, len(want))
	}
	return worst
}

func TestMulTShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{
		{1, 1, 1}, {1, 16, 32}, {1, 5, 33}, {1, 37, 31}, {2, 4, 64}, {3, 7, 95},
		{4, 64, 128}, {5, 19, 200}, {8, 50, 257}, {13, 33, 64}, {17, 100, 96},
		{33, 61, 129}, {70, 130, 160},
		{9, 70, 4700}, {7, 64, 2600}, // k in several chunks (kChunk) for m > 6
	}
	for _, ne := range testEngines(t) {
		worst := 0.0
		for _, s := range shapes {
			for _, withBias := range []bool{false, true} {
				p := newProblem(r, s[0], s[1], s[2], withBias)
				out := make([]float32, p.m*p.n)
				for i := range out {
					out[i] = float32(math.NaN()) // every output must be written
				}
				ne.e.MulT(p.x, p.m, p.w, p.bias, out)
				worst = max(worst, p.check(t, fmt.Sprintf("%s bias=%v", ne.name, withBias), out))
				checkNoFallback(t, ne)
			}
		}
		t.Logf("%s: largest error %.2g of the bound (k+2)·2^-24·sum|x·w|", ne.name, worst)
	}
}

// TestMulTUnroundedX bounds the error with activations that are not bf16
// values: engines that round x to bf16 add at most 2^-8·|x| per element,
// hence 2^-8·sum|x·w| on top of the accumulation error.
func TestMulTUnroundedX(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := newProblem(r, 6, 40, 300, true)
	x := make([]float32, len(p.x))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	exact := problem{m: p.m, n: p.n, k: p.k, x: x, w: p.w, wd: p.wd, bias: p.bias}
	want, scale := exact.reference()
	tol := math.Pow(2, -8) + float64(p.k+2)*math.Pow(2, -24)
	for _, ne := range testEngines(t) {
		out := make([]float32, p.m*p.n)
		ne.e.MulT(x, p.m, p.w, p.bias, out)
		worst := 0.0
		for i, w := range want {
			d := math.Abs(float64(out[i]) - w)
			if !(d <= tol*scale[i]) {
				t.Fatalf("%s: out[%d] = %g, want %g (error %g > %g)", ne.name, i, out[i], w, d, tol*scale[i])
			}
			worst = max(worst, d/scale[i])
		}
		t.Logf("%s: largest error %.2g·sum|x·w| (bound %.2g)", ne.name, worst, tol)
	}
}

// TestMulTSubslices checks that MulT reads only m rows of x and writes only
// m rows of out.
func TestMulTSubslices(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	p := newProblem(r, 3, 21, 70, false)
	for _, ne := range testEngines(t) {
		x := append(append([]float32(nil), p.x...), make([]float32, 2*p.k)...)
		out := make([]float32, (p.m+2)*p.n)
		for i := range out {
			out[i] = 7
		}
		ne.e.MulT(x, p.m, p.w, nil, out)
		p.check(t, ne.name, out[:p.m*p.n])
		for i, v := range out[p.m*p.n:] {
			if v != 7 {
				t.Fatalf("%s wrote out[%d] past m rows", ne.name, p.m*p.n+i)
			}
		}
		ne.e.MulT(x, 0, p.w, nil, out[:0]) // m = 0 is a no-op
	}
}

func TestMulTConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var probs []problem
	for _, m := range []int{1, 3, 8, 40} {
		probs = append(probs, newProblem(r, m, 96, 160, m%2 == 1))
	}
	for _, ne := range testEngines(t) {
		var wg sync.WaitGroup
		outs := make([][]float32, 4*len(probs))
		for g := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := probs[g%len(probs)]
				out := make([]float32, p.m*p.n)
				for range 5 {
					ne.e.MulT(p.x, p.m, p.w, p.bias, out)
				}
				outs[g] = out
			}()
		}
		wg.Wait()
		checkNoFallback(t, ne)
		for g, out := range outs {
			probs[g%len(probs)].check(t, ne.name+" concurrent", out)
		}
	}
}

func TestMulTPanicsOnBadShapes(t *testing.T) {
	w := NewMatrix(4, 8, make([]uint16, 32))
	e := NewGoEngine(1)
	cases := map[string]func(){
		"short x":    func() { e.MulT(make([]float32, 15), 2, w, nil, make([]float32, 8)) },
		"short out":  func() { e.MulT(make([]float32, 16), 2, w, nil, make([]float32, 7)) },
		"short bias": func() { e.MulT(make([]float32, 16), 2, w, make([]float32, 3), make([]float32, 8)) },
		"nil matrix": func() { e.MulT(make([]float32, 16), 2, nil, nil, make([]float32, 8)) },
		"bad matrix": func() { NewMatrix(4, 8, make([]uint16, 31)) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestLoadGo(t *testing.T) {
	e, warn, err := Load(Options{Kind: "go", Threads: 1})
	if err != nil || warn != "" {
		t.Fatalf("Load(go) = %v, %q, %v", e, warn, err)
	}
	if _, ok := e.(*GoEngine); !ok {
		t.Fatalf("Load(go) gave %T", e)
	}
	if _, _, err := Load(Options{Kind: "tpu"}); err == nil {
		t.Error("Load(tpu) succeeded")
	}
	if _, _, err := Load(Options{Threads: -1}); err == nil {
		t.Error("Load with Threads -1 succeeded")
	}
}

// checkNoFallback fails when a oneDNN engine handed a product to the Go
// kernels because oneDNN failed.
func checkNoFallback(t *testing.T, ne namedEngine) {
	t.Helper()
	if e, ok := ne.e.(*OneDNNEngine); ok {
		if n, err := e.Fallbacks(); n > 0 {
			t.Fatalf("%s: %d products fell back to Go: %v", ne.name, n, err)
		}
	}
}
