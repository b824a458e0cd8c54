package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// forEachBackend runs test as subtest "gonum" with the Go backend and as
// subtest "openblas" with OpenBLAS, which skips when the library is absent.
func forEachBackend(t *testing.T, test func(t *testing.T, b Backend)) {
	t.Run("gonum", func(t *testing.T) { test(t, Gonum{}) })
	t.Run("openblas", func(t *testing.T) { test(t, loadOpenBLASOrSkip(t)) })
}

// loadOpenBLASOrSkip loads OpenBLAS or skips the test with the reason.
func loadOpenBLASOrSkip(t testing.TB) *OpenBLAS {
	t.Helper()
	ob, err := LoadOpenBLAS(Options{})
	if err != nil {
		t.Skipf("OpenBLAS not available (run .ci/install-openblas.sh as root): %v", err)
	}
	return ob
}

// naiveSgemm is the reference product, accumulated in float64.
func naiveSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	at := func(i, l int) float64 {
		if transA {
			return float64(a[l*lda+i])
		}
		return float64(a[i*lda+l])
	}
	bt := func(l, j int) float64 {
		if transB {
			return float64(b[j*ldb+l])
		}
		return float64(b[l*ldb+j])
	}
	for i := range m {
		for j := range n {
			var sum float64
			for l := range k {
				sum += at(i, l) * bt(l, j)
			}
			prev := 0.0
			if beta != 0 {
				prev = float64(beta) * float64(c[i*ldc+j])
			}
			c[i*ldc+j] = float32(float64(alpha)*sum + prev)
		}
	}
}

// naiveSgemv is the reference matrix-vector product, accumulated in float64.
func naiveSgemv(transA bool, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	rows, inner := m, n
	if transA {
		rows, inner = n, m
	}
	for i := range rows {
		var sum float64
		for l := range inner {
			var av float32
			if transA {
				av = a[l*lda+i]
			} else {
				av = a[i*lda+l]
			}
			sum += float64(av) * float64(x[l*incX])
		}
		prev := 0.0
		if beta != 0 {
			prev = float64(beta) * float64(y[i*incY])
		}
		y[i*incY] = float32(float64(alpha)*sum + prev)
	}
}

// assertClose fails when got and want differ by more than a tolerance
// scaled to the inner dimension.
func assertClose(t *testing.T, got, want []float32, inner int) {
	t.Helper()
	tol := 1e-5 * float64(max(inner, 1))
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) || math.Abs(g-w) > tol*math.Max(1, math.Abs(w)) {
			t.Fatalf("element %d: got %g, want %g (tolerance %g)", i, g, w, tol)
		}
	}
}

func TestSgemmMatchesNaive(t *testing.T) {
	shapes := []struct{ m, n, k, pad int }{
		{1, 1, 1, 0},
		{1, 17, 33, 0},
		{1, 130, 257, 3},
		{19, 1, 23, 0},
		{29, 31, 1, 2},
		{7, 5, 3, 5},
		{33, 65, 17, 1},
		{64, 64, 64, 0},
		{70, 129, 97, 7},
	}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {0.5, 1}, {-2, 0.25}, {0, 3}}
	rng := rand.New(rand.NewPCG(7, 11))
	forEachBackend(t, func(t *testing.T, backend Backend) {
		for _, s := range shapes {
			for _, transA := range []bool{false, true} {
				for _, transB := range []bool{false, true} {
					for _, sc := range scalars {
						name := fmt.Sprintf("%dx%dx%d+%d/tA=%v,tB=%v/alpha=%g,beta=%g",
							s.m, s.n, s.k, s.pad, transA, transB, sc.alpha, sc.beta)
						t.Run(name, func(t *testing.T) {
							rowsA, colsA := s.m, s.k
							if transA {
								rowsA, colsA = s.k, s.m
							}
							rowsB, colsB := s.k, s.n
							if transB {
								rowsB, colsB = s.n, s.k
							}
							lda, ldb, ldc := colsA+s.pad, colsB+s.pad, s.n+s.pad
							a := randomMatrix(rng, rowsA*lda)
							b := randomMatrix(rng, rowsB*ldb)
							c := randomMatrix(rng, s.m*ldc)
							if sc.beta == 0 {
								// BLAS never reads C when beta is 0.
								for i := range c {
									c[i] = float32(math.NaN())
								}
							}
							want := append([]float32(nil), c...)
							naiveSgemm(transA, transB, s.m, s.n, s.k, sc.alpha, a, lda, b, ldb, sc.beta, want, ldc)
							// The padding columns of C must be left alone.
							for i := range s.m {
								for j := s.n; j < ldc; j++ {
									want[i*ldc+j] = c[i*ldc+j]
								}
							}
							backend.Sgemm(transA, transB, s.m, s.n, s.k, sc.alpha, a, lda, b, ldb, sc.beta, c, ldc)
							assertClose(t, c, want, s.k)
						})
					}
				}
			}
		}
	})
}

func TestSgemvMatchesNaive(t *testing.T) {
	shapes := []struct{ m, n, pad, incX, incY int }{
		{1, 1, 0, 1, 1},
		{1, 37, 2, 1, 1},
		{41, 1, 0, 2, 3},
		{13, 27, 5, 3, 2},
		{256, 333, 1, 1, 1},
	}
	rng := rand.New(rand.NewPCG(3, 5))
	forEachBackend(t, func(t *testing.T, backend Backend) {
		for _, s := range shapes {
			for _, transA := range []bool{false, true} {
				for _, beta := range []float32{0, 0.5} {
					name := fmt.Sprintf("%dx%d+%d/inc=%d,%d/tA=%v/beta=%g",
						s.m, s.n, s.pad, s.incX, s.incY, transA, beta)
					t.Run(name, func(t *testing.T) {
						lenX, lenY := s.n, s.m
						if transA {
							lenX, lenY = s.m, s.n
						}
						lda := s.n + s.pad
						a := randomMatrix(rng, s.m*lda)
						x := randomMatrix(rng, (lenX-1)*s.incX+1)
						y := randomMatrix(rng, (lenY-1)*s.incY+1)
						want := append([]float32(nil), y...)
						naiveSgemv(transA, s.m, s.n, 1.5, a, lda, x, s.incX, beta, want, s.incY)
						backend.Sgemv(transA, s.m, s.n, 1.5, a, lda, x, s.incX, beta, y, s.incY)
						assertClose(t, y, want, lenX)
					})
				}
			}
		}
	})
}

func TestEmptyInnerDimensionScalesOutput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend Backend) {
		c := []float32{1, 2, 3, 4, 5, 6}
		backend.Sgemm(false, false, 2, 3, 0, 1, nil, 1, nil, 3, 2, c, 3)
		assertClose(t, c, []float32{2, 4, 6, 8, 10, 12}, 1)

		y := []float32{1, 2, 3}
		backend.Sgemv(false, 3, 0, 1, nil, 1, nil, 1, 0.5, y, 1)
		assertClose(t, y, []float32{0.5, 1, 1.5}, 1)
	})
}

func TestInvalidArgumentsPanic(t *testing.T) {
	buf := make([]float32, 16)
	cases := []struct {
		name, want string
		call       func(Backend)
	}{
		{"negative m", "size m is -1", func(b Backend) {
			b.Sgemm(false, false, -1, 2, 2, 1, buf, 2, buf, 2, 0, buf, 2)
		}},
		{"lda below k", "leading dimension of A is 1, want >= 3", func(b Backend) {
			b.Sgemm(false, false, 2, 2, 3, 1, buf, 1, buf, 2, 0, buf, 2)
		}},
		{"short B", "B holds 16 values, want >= 20", func(b Backend) {
			b.Sgemm(false, true, 2, 5, 4, 1, buf, 4, buf, 4, 0, buf, 5)
		}},
		{"short C", "C holds 3 values, want >= 4", func(b Backend) {
			b.Sgemm(false, false, 2, 2, 2, 1, buf, 2, buf, 2, 0, buf[:3], 2)
		}},
		{"zero increment", "increment of x is 0", func(b Backend) {
			b.Sgemv(false, 2, 2, 1, buf, 2, buf, 0, 0, buf, 1)
		}},
		{"short y", "y holds 2 values, want >= 3", func(b Backend) {
			b.Sgemv(true, 2, 3, 1, buf, 3, buf, 1, 0, buf[:2], 1)
		}},
	}
	forEachBackend(t, func(t *testing.T, backend Backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				defer func() {
					msg := fmt.Sprint(recover())
					if !strings.Contains(msg, tc.want) {
						t.Fatalf("panic %q, want one containing %q", msg, tc.want)
					}
				}()
				tc.call(backend)
			})
		}
	})
}

func TestCoreTypeFor(t *testing.T) {
	cases := []struct {
		name string
		f    cpuFeatures
		want string
	}{
		{"avx512", cpuFeatures{AVX512F: true, AVX512BW: true, AVX512DQ: true, AVX512VL: true, AVX2: true, FMA: true}, "SkylakeX"},
		{"avx512f only (Knights Landing)", cpuFeatures{AVX512F: true, AVX2: true, FMA: true}, "Haswell"},
		{"avx2 fma", cpuFeatures{AVX2: true, FMA: true}, "Haswell"},
		{"avx2 without fma", cpuFeatures{AVX2: true}, ""},
		{"sse only", cpuFeatures{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := coreTypeFor(tc.f); got != tc.want {
				t.Fatalf("coreTypeFor(%+v) = %q, want %q", tc.f, got, tc.want)
			}
		})
	}
}

func TestLoadChoosesBackend(t *testing.T) {
	const missing = "/nonexistent/libopenblas.so.0"
	cases := []struct {
		name        string
		env         string
		opts        Options
		wantGo      bool
		wantWarning bool
		wantErr     string
	}{
		{name: "forced go", opts: Options{Backend: KindGo}, wantGo: true},
		{name: "env go", env: "go", wantGo: true},
		{name: "option wins over env", env: "openblas", opts: Options{Backend: KindGo}, wantGo: true},
		{name: "auto falls back with warning", opts: Options{LibraryPath: missing}, wantGo: true, wantWarning: true},
		{name: "env auto falls back", env: "AUTO", opts: Options{LibraryPath: missing}, wantGo: true, wantWarning: true},
		{name: "openblas required", opts: Options{Backend: KindOpenBLAS, LibraryPath: missing}, wantErr: missing},
		{name: "env openblas required", env: "openblas", opts: Options{LibraryPath: missing}, wantErr: missing},
		{name: "bad env", env: "mkl", wantErr: `BLIPFLOW_BLAS "mkl"`},
		{name: "bad option", opts: Options{Backend: "cuda"}, wantErr: `Options.Backend "cuda"`},
		{name: "negative threads", opts: Options{Backend: KindGo, Threads: -1}, wantErr: "Threads -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvBackend, tc.env)
			backend, warning, err := Load(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if _, isGo := backend.(Gonum); isGo != tc.wantGo {
				t.Fatalf("Load returned %s, want Go backend %v", backend.Name(), tc.wantGo)
			}
			if (warning != "") != tc.wantWarning {
				t.Fatalf("warning %q, want one: %v", warning, tc.wantWarning)
			}
			if strings.Contains(warning, "\n") {
				t.Fatalf("warning %q spans several lines", warning)
			}
		})
	}
}

func TestOpenBLASReportsKernelAndThreads(t *testing.T) {
	ob := loadOpenBLASOrSkip(t)
	if ob.CoreName() == "" || !strings.Contains(ob.Name(), ob.CoreName()) {
		t.Fatalf("Name %q does not report kernel %q", ob.Name(), ob.CoreName())
	}
	if !strings.HasPrefix(ob.Config(), "OpenBLAS") {
		t.Fatalf("Config %q does not describe an OpenBLAS build", ob.Config())
	}
	if want := coreTypeFor(hostFeatures()); want != "" && strings.Contains(ob.Name(), "from CPU features") && ob.CoreName() != want {
		t.Fatalf("kernel %q, want %q chosen from CPU features", ob.CoreName(), want)
	}
	before := ob.Threads()
	t.Cleanup(func() { ob.SetThreads(before) })
	ob.SetThreads(1)
	if got := ob.Threads(); got != 1 {
		t.Fatalf("Threads after SetThreads(1) = %d", got)
	}
}

func TestOpenBLASThreadsOption(t *testing.T) {
	ob := loadOpenBLASOrSkip(t)
	before := ob.Threads()
	t.Cleanup(func() { ob.SetThreads(before) })
	loaded, err := LoadOpenBLAS(Options{Threads: 1})
	if err != nil {
		t.Fatalf("LoadOpenBLAS: %v", err)
	}
	if got := loaded.Threads(); got != 1 {
		t.Fatalf("Threads = %d after loading with Threads: 1", got)
	}
}

func TestDefaultIsLoadedOnce(t *testing.T) {
	first, _, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	second, _, _ := Default()
	if first != second {
		t.Fatalf("Default returned %s, then a different backend %s", first.Name(), second.Name())
	}
}

func TestMeasureGFLOPS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend Backend) {
		if rate := MeasureGFLOPS(backend, 64); !(rate > 0) || math.IsInf(rate, 0) {
			t.Fatalf("%s: MeasureGFLOPS = %g, want a positive finite rate", backend.Name(), rate)
		}
	})
}
