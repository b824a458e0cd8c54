package nn

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// Tolerances of the AVX-512 kernels against the Go code they vectorize,
// The kernels evaluate the Go code's formulas with the same roundings (no
// fused multiply-adds), so they give the same bits as the Go code compiled
// without FMA (GOAMD64 v1, the default); with GOAMD64=v3 the compiler may
// fuse some of erf32's and exp32's multiply-adds and a last bit differs.
const (
	// geluMaxULP bounds |asm - go| for the erf GELU in ulps of 0.5·|v|
	// (halfV). Measured: 0 (GOAMD64=v1), 2 (v3).
	geluMaxULP = 2
	// softmaxMaxRel bounds the relative difference of each asm and Go
	// result once their sums' difference is divided out, in units of
	// 2^-24: the final product's rounding in each (the exponentials are
	// the same bits unless the Go compiler fuses exp32's multiply-adds).
	softmaxMaxRel = 4
)

func requireAVX512(t testing.TB) {
	if !haveAVX512Elementwise {
		t.Skip("hardware: no AVX512F, the elementwise kernels cannot run")
	}
}

func requireAVX2(t testing.TB) {
	if !haveAVX2Elementwise {
		t.Skip("hardware: no AVX2, the AVX2 elementwise kernels cannot run")
	}
}

// ulp is the spacing of float32 values at |x|.
func ulp(x float32) float64 {
	a := math.Abs(float64(x))
	if a < math.SmallestNonzeroFloat32*(1<<24) { // subnormal range: a fixed step
		return math.SmallestNonzeroFloat32
	}
	if math.IsInf(a, 0) || a > math.MaxFloat32 {
		return math.Inf(1)
	}
	f := float32(a)
	return float64(math.Nextafter32(f, float32(math.Inf(1))) - f)
}

// ulpDist is the number of float32 values between a and b.
func ulpDist(a, b float32) int64 {
	key := func(f float32) int64 {
		u := int64(math.Float32bits(f))
		if u&(1<<31) != 0 {
			return -(u &^ (1 << 31))
		}
		return u
	}
	d := key(a) - key(b)
	if d < 0 {
		return -d
	}
	return d
}

// geluInputs are edge values, a fine sweep of [-12, 12] and random bit
// patterns.
func geluInputs() []float32 {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	xs := []float32{0, float32(math.Copysign(0, -1)), inf, -inf, nan,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, 1e-38, -1e-38, 1e-20, -1e-20,
		1e-7, -1e-7, 0.5, -0.5, 1, -1, 3, -3, 4 * math.Sqrt2, -4 * math.Sqrt2, 6, -6, 10, -10, 100, -100,
		1e30, -1e30, 2.5e38, -2.5e38, math.MaxFloat32, -math.MaxFloat32}
	for x := float32(-12); x <= 12; x += 1.0 / 256 {
		xs = append(xs, x)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		xs = append(xs, float32(r.NormFloat64()*3))
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	return xs
}

// activationCase is one activation's Go and assembly kernels and how far
// apart they may be: maxErr of scale(v) ulps.
type activationCase struct {
	name   string
	goFn   func([]float32)
	asm    func(*float32, int)
	scale  func(v, out float32) float32
	maxErr float64
}

// halfV measures GELU errors in ulps of 0.5·|v|, the size 1 + erf (or 1 +
// tanh) is multiplied by: near 0 that sum cancels, so ulps of the result
// itself would blow up a last-bit difference in it for v far below 0.
func halfV(v, _ float32) float32 { return 0.5 * v }

func activationCases() []activationCase {
	return []activationCase{
		{"gelu", geluErfGo, geluErfAVX512, halfV, geluMaxULP},
		// tanh and exp in float64 by a polynomial, rounded to float32 as
		// math.Tanh's and math.Exp's are: a tie can round the other way.
		// Measured 0 for both; gelu_tanh 2 with GOAMD64=v3, where the Go
		// compiler fuses v + 0.044715·v·v·v.
		{"gelu_tanh", geluTanhGo, geluTanhAVX512, halfV, 2},
		{"quick_gelu", quickGeluGo, quickGeluAVX512, func(_, out float32) float32 { return out }, 1},
	}
}

func TestActivationsAVX512MatchGo(t *testing.T) {
	requireAVX512(t)
	testActivations(t, activationCases())
}

func TestActivationsAVX2MatchGo(t *testing.T) {
	requireAVX2(t)
	avx2 := func(p *float32, n int) { geluErfAVX2Row(unsafe.Slice(p, n)) }
	testActivations(t, []activationCase{{"gelu", geluErfGo, avx2, halfV, geluMaxULP}})
}

// testActivations compares each case's kernel with its Go code over
// geluInputs, whole and cut to every length 0..70 at 16 offsets.
func testActivations(t *testing.T, cases []activationCase) {
	xs := geluInputs()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var worst float64
			var worstAt float32
			check := func(in []float32) {
				want := append([]float32(nil), in...)
				got := append([]float32(nil), in...)
				c.goFn(want)
				if len(got) > 0 {
					c.asm(&got[0], len(got))
				}
				for i, v := range in {
					g, w := got[i], want[i]
					if math.IsNaN(float64(g)) || math.IsNaN(float64(w)) {
						if math.IsNaN(float64(g)) != math.IsNaN(float64(w)) {
							t.Fatalf("%s(%g): asm %g, go %g", c.name, v, g, w)
						}
						continue
					}
					if g == w {
						continue
					}
					e := math.Abs(float64(g)-float64(w)) / ulp(c.scale(v, w))
					if e > worst {
						worst, worstAt = e, v
					}
				}
			}
			check(xs)
			// Every length 0..70 at every start offset mod 16 exercises the
			// masked tail and unaligned loads; the canary after the slice
			// must stay untouched.
			for n := 0; n <= 70; n++ {
				for off := 0; off < 16; off++ {
					buf := append([]float32(nil), xs[off*97:off*97+off+n+1]...)
					canary := buf[off+n]
					check(buf[off : off+n])
					got := append([]float32(nil), buf...)
					c.asm(&got[off], n)
					if math.Float32bits(got[off+n]) != math.Float32bits(canary) {
						t.Fatalf("n=%d: the kernel wrote past the end", n)
					}
				}
			}
			t.Logf("max |asm - go| = %.3g ulp (at v = %g)", worst, worstAt)
			if worst > c.maxErr {
				t.Fatalf("max |asm - go| = %.3g ulp at v = %g, want <= %g", worst, worstAt, c.maxErr)
			}
		})
	}
}

func TestReluAVX512MatchesGo(t *testing.T) {
	requireAVX512(t)
	xs := geluInputs()
	for n := 0; n <= 70; n++ {
		for off := 0; off < 16; off += 5 {
			buf := append([]float32(nil), xs[off*31:off*31+off+n+1]...)
			want := append([]float32(nil), buf...)
			reluGo(want[off : off+n])
			reluAVX512(&buf[off], n)
			for i := range buf {
				if math.Float32bits(buf[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d, element %d (input %g): asm %g, go %g", n, i, xs[off*31+i], buf[i], want[i])
				}
			}
		}
	}
}

// TestGeluErfAccuracy bounds both GELUs against float64 math.Erf.
func TestGeluErfAccuracy(t *testing.T) {
	requireAVX512(t)
	var xs []float32
	for x := float32(-12); x <= 12; x += 1.0 / 1024 {
		xs = append(xs, x)
	}
	goOut := append([]float32(nil), xs...)
	asm := append([]float32(nil), xs...)
	geluErfGo(goOut)
	geluErfAVX512(&asm[0], len(asm))
	var worstGo, worstAsm float64
	for i, v := range xs {
		want := 0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2))
		worstGo = math.Max(worstGo, math.Abs(float64(goOut[i])-want)/ulp(0.5*v))
		worstAsm = math.Max(worstAsm, math.Abs(float64(asm[i])-want)/ulp(0.5*v))
	}
	t.Logf("max error against float64 erf, in ulp of 0.5·|v|: go %.3g, asm %.3g", worstGo, worstAsm)
	if worstAsm > worstGo+1 {
		t.Fatalf("asm GELU error %.3g ulp against float64, go %.3g", worstAsm, worstGo)
	}
}

// softmaxRows are rows of lengths 1..70, 257 and 1000 with assorted
// ranges, masked (-Inf) entries, underflowing exponentials and NaN/Inf.
func softmaxRows() [][]float32 {
	r := rand.New(rand.NewPCG(3, 4))
	inf := float32(math.Inf(1))
	var rows [][]float32
	lengths := []int{257, 1000}
	for n := 1; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, scale := range []float64{1e-6, 1, 10, 200} {
			row := make([]float32, n)
			for i := range row {
				row[i] = float32(r.NormFloat64() * scale)
			}
			rows = append(rows, row)
			masked := append([]float32(nil), row...)
			for i := range masked {
				if i > 0 && r.IntN(3) == 0 {
					masked[i] = -inf
				}
			}
			rows = append(rows, masked)
		}
		rows = append(rows, make([]float32, n)) // all equal
	}
	nanFirst := []float32{float32(math.NaN()), 1, 2}
	nanLater := make([]float32, 40)
	nanLater[33] = float32(math.NaN())
	withInf := make([]float32, 20)
	withInf[17] = inf
	allMasked := []float32{-inf, -inf, -inf}
	return append(rows, nanFirst, nanLater, withInf, allMasked)
}

func TestSoftmaxAVX512MatchesGo(t *testing.T) {
	requireAVX512(t)
	testSoftmax(t, func(s []float32) { softmaxAVX512(&s[0], len(s)) })
}

func TestSoftmaxAVX2MatchesGo(t *testing.T) {
	requireAVX2(t)
	testSoftmax(t, softmaxRowAVX2)
}

// testSoftmax compares a softmax kernel with softmaxRowGo over softmaxRows.
func testSoftmax(t *testing.T, kernel func([]float32)) {
	var worstExp, worstSum float64 // relative differences, in units of 2^-24
	for _, row := range softmaxRows() {
		n := len(row)
		want := append([]float32(nil), row...)
		got := append(append([]float32(nil), row...), 12345) // canary
		softmaxRowGo(want)
		kernel(got[:n])
		if got[n] != 12345 {
			t.Fatalf("n=%d: the kernel wrote past the end", n)
		}
		nans := 0
		for i := range row {
			g, w := got[i], want[i]
			if math.IsNaN(float64(g)) != math.IsNaN(float64(w)) {
				t.Fatalf("n=%d, element %d: asm %g, go %g", n, i, g, w)
			}
			if math.IsNaN(float64(g)) {
				nans++
			}
		}
		if nans > 0 {
			continue
		}
		// The first maximum has exp 1, so its output is 1/sum itself: the
		// sums' difference. Dividing it out leaves the exponentials'.
		k := 0
		for i, v := range row {
			if v > row[k] {
				k = i
			}
		}
		invRatio := float64(got[k]) / float64(want[k])
		worstSum = math.Max(worstSum, math.Abs(invRatio-1)*(1<<24))
		// A left-to-right float32 sum of n terms is off by at most (n-1)
		// roundings of 2^-24; the lanes' sum by fewer.
		if d := math.Abs(invRatio-1) * (1 << 24); d > float64(n+4) {
			t.Fatalf("n=%d: 1/sum differs by %.3g·2^-24, want <= n+4", n, d)
		}
		for i := range row {
			g, w := float64(got[i]), float64(want[i])*invRatio
			if w < 1e-36 { // subnormal results: absolute steps
				if math.Abs(g-w) > 2*math.SmallestNonzeroFloat32 {
					t.Fatalf("n=%d, element %d: asm %g, go %g", n, i, got[i], want[i])
				}
				continue
			}
			d := math.Abs(g-w) / w * (1 << 24)
			worstExp = math.Max(worstExp, d)
			if d > softmaxMaxRel {
				t.Fatalf("n=%d, element %d: asm %g, go %g (rescaled %g): %.3g·2^-24 apart, want <= %d",
					n, i, got[i], want[i], w, d, softmaxMaxRel)
			}
		}
	}
	t.Logf("max relative difference asm/go: exponentials %.3g·2^-24, 1/sum %.3g·2^-24", worstExp, worstSum)
}

// TestSoftmaxAccuracy bounds both softmaxes against float64.
func TestSoftmaxAccuracy(t *testing.T) {
	requireAVX512(t)
	var worstGo, worstAsm float64
	for _, row := range softmaxRows() {
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		if math.IsNaN(m) || math.IsInf(m, 0) {
			continue
		}
		want := make([]float64, len(row))
		var sum float64
		for i, v := range row {
			want[i] = math.Exp(float64(v) - m)
			sum += want[i]
		}
		goOut := append([]float32(nil), row...)
		asm := append([]float32(nil), row...)
		softmaxRowGo(goOut)
		softmaxAVX512(&asm[0], len(asm))
		for i := range row {
			w := want[i] / sum
			if w < 1e-30 { // exp32 flushes below e^-87
				continue
			}
			worstGo = math.Max(worstGo, math.Abs(float64(goOut[i])-w)/ulp(float32(w)))
			worstAsm = math.Max(worstAsm, math.Abs(float64(asm[i])-w)/ulp(float32(w)))
		}
	}
	t.Logf("max error against float64, in ulp: go %.3g, asm %.3g", worstGo, worstAsm)
	if worstAsm > worstGo+1 {
		t.Fatalf("asm softmax error %.3g ulp against float64, go %.3g", worstAsm, worstGo)
	}
}

// benchKernels runs each kernel over a fresh copy of src per pass (the
// copy is included; it is small beside the kernels) on one goroutine and
// reports ns per element.
func benchKernels(b *testing.B, src []float32, row int, kernels map[string]func([]float32)) {
	x := make([]float32, len(src))
	for _, name := range []string{"go", "avx2", "avx512"} {
		k, ok := kernels[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				copy(x, src)
				for r := 0; r < len(x); r += row {
					k(x[r : r+row])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
		})
	}
}

// asmKernel wraps an assembly kernel, where the CPU can run it, for
// benchKernels.
func asmKernel(kernels map[string]func([]float32), k func(*float32, int)) map[string]func([]float32) {
	if haveAVX512Elementwise {
		kernels["avx512"] = func(s []float32) { k(&s[0], len(s)) }
	}
	return kernels
}

// BenchmarkGELU times the erf GELU over 16 rows of the ViT-g MLP (6144).
func BenchmarkGELU(b *testing.B) {
	src := NewRandomSource(1, 1).Shaped([]int{16 * 6144})
	kernels := asmKernel(map[string]func([]float32){"go": geluErfGo}, geluErfAVX512)
	if haveAVX2Elementwise {
		kernels["avx2"] = geluErfAVX2Row
	}
	benchKernels(b, src, len(src), kernels)
}

// BenchmarkGELUTanh times the tanh GELU over 16 rows of the flan-t5-xl MLP (5120).
func BenchmarkGELUTanh(b *testing.B) {
	src := NewRandomSource(1, 1).Shaped([]int{16 * 5120})
	benchKernels(b, src, len(src), asmKernel(map[string]func([]float32){"go": geluTanhGo}, geluTanhAVX512))
}

// BenchmarkQuickGELU times x·σ(1.702x) over 16 rows of 6144.
func BenchmarkQuickGELU(b *testing.B) {
	src := NewRandomSource(1, 1).Shaped([]int{16 * 6144})
	benchKernels(b, src, len(src), asmKernel(map[string]func([]float32){"go": quickGeluGo}, quickGeluAVX512))
}

// BenchmarkReLU times ReLU over 16 rows of the OPT-2.7b MLP (10240).
func BenchmarkReLU(b *testing.B) {
	src := NewRandomSource(1, 1).Shaped([]int{16 * 10240})
	benchKernels(b, src, len(src), asmKernel(map[string]func([]float32){"go": reluGo}, reluAVX512))
}

// BenchmarkSoftmaxRow times softmax over 64 ViT-g attention rows (257).
func BenchmarkSoftmaxRow(b *testing.B) {
	src := NewRandomSource(2, 3).Shaped([]int{64 * 257})
	kernels := asmKernel(map[string]func([]float32){"go": softmaxRowGo}, softmaxAVX512)
	if haveAVX2Elementwise {
		kernels["avx2"] = softmaxRowAVX2
	}
	benchKernels(b, src, 257, kernels)
}

// testNorm is a norm of width d with random gamma and beta.
func testNorm(d int, rms bool, r *rand.Rand) *Norm {
	g, b := make([]float32, d), make([]float32, d)
	for i := range g {
		g[i] = float32(1 + r.NormFloat64()*0.1)
		b[i] = float32(r.NormFloat64() * 0.1)
	}
	return &Norm{Dim: d, Eps: 1e-6, Gamma: &Weight{Data: g}, Beta: &Weight{Data: b}, RMS: rms}
}

func TestNormAVX512MatchesGo(t *testing.T) {
	requireAVX512(t)
	r := rand.New(rand.NewPCG(5, 6))
	lengths := []int{1408, 2560}
	for n := 1; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	var worstM, worstInv int64
	for _, d := range lengths {
		for _, rms := range []bool{false, true} {
			for _, offset := range []float64{0, 3, 1000} {
				nm := testNorm(d, rms, r)
				row := make([]float32, d)
				for i := range row {
					row[i] = float32(offset + r.NormFloat64()*2)
				}
				m, inv := normStats(nm, row)
				wm, winv := normStatsGo(nm, row)
				worstM, worstInv = max(worstM, ulpDist(m, wm)), max(worstInv, ulpDist(inv, winv))
				// The rows' outputs from the same statistics: the same bits.
				want := make([]float32, d+1)
				got := make([]float32, d+1)
				got[d], want[d] = 12345, 12345 // canary
				normApplyGo(nm, row, want, m, inv)
				normRow(nm, row, got)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("d=%d rms=%v element %d: asm %g, go %g", d, rms, i, got[i], want[i])
					}
				}
			}
		}
	}
	t.Logf("max |asm - go|: mean %d ulp, 1/sqrt(var+eps) %d ulp", worstM, worstInv)
	if worstM > 1 || worstInv > 1 {
		t.Fatalf("norm statistics differ by %d (mean) and %d (inverse deviation) ulp, want <= 1", worstM, worstInv)
	}
}

// BenchmarkNorm times a layer norm over 16 ViT-g rows (1408).
func BenchmarkNorm(b *testing.B) {
	const d = 1408
	nm := testNorm(d, false, rand.New(rand.NewPCG(7, 8)))
	src := NewRandomSource(3, 1).Shaped([]int{16 * d})
	out := make([]float32, d)
	kernels := map[string]func([]float32){"go": func(row []float32) {
		m, inv := normStatsGo(nm, row)
		normApplyGo(nm, row, out, m, inv)
	}}
	if haveAVX512Elementwise {
		kernels["avx512"] = func(row []float32) { normRow(nm, row, out) }
	}
	benchKernels(b, src, d, kernels)
}
