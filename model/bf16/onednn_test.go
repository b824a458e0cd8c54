package bf16

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// oneDNNTestEngines returns oneDNN for every m and oneDNN with the Go
// kernels below the crossover, or nothing (skipping, or failing when
// BLIPFLOW_REQUIRE_ONEDNN=1) when oneDNN cannot run here.
func oneDNNTestEngines(t testing.TB) []namedEngine {
	t.Helper()
	all, err := loadOneDNN(Options{Threads: 2, SmallRows: -1})
	if err != nil {
		// Required means the library must load; on a CPU without bf16
		// arithmetic the engine rightly refuses, and the tests cover the
		// Go kernels that Load falls back to.
		if requireOneDNN() && !errors.Is(err, errNoNativeISA) {
			t.Fatalf("%s=1 but oneDNN cannot run: %v", EnvRequireOneDNN, err)
		}
		t.Logf("oneDNN not tested: %v", err)
		return nil
	}
	mixed, err := loadOneDNN(Options{Threads: 2, SmallRows: 4})
	if err != nil {
		t.Fatal(err)
	}
	reorder, err := newOneDNNEngine(Options{Threads: 2, SmallRows: -1}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(reorder.calls) })
	return []namedEngine{{"onednn", all}, {"onednn+go", mixed}, {"onednn-reordered", reorder}}
}

// TestOneDNNLayouts checks that on this CPU oneDNN multiplies from the
// packed copy (no second copy of the weights), and that the engine that
// reorders into oneDNN's own layout made its copies.
func TestOneDNNLayouts(t *testing.T) {
	es := oneDNNTestEngines(t)
	if len(es) == 0 {
		t.Skip("no oneDNN")
	}
	r := newProblem(rand.New(rand.NewPCG(13, 14)), 40, 96, 200, true)
	for _, ne := range es {
		out := make([]float32, r.m*r.n)
		ne.e.MulT(r.x, r.m, r.w, r.bias, out)
		r.check(t, ne.name, out)
		checkNoFallback(t, ne)
	}
	all, reordered := es[0].e.(*OneDNNEngine), es[2].e.(*OneDNNEngine)
	t.Logf("%s: %d reordered copies", all.Name(), all.ReorderedCopies())
	if f := hostFeatures(); f.AVX512BF16 && !f.AMXBF16 && all.ReorderedCopies() != 0 {
		t.Errorf("oneDNN made %d reordered copies on an AVX512-BF16 CPU; want it to use the packed layout", all.ReorderedCopies())
	}
	if reordered.ReorderedCopies() == 0 {
		t.Error("the reordering engine made no copy")
	}
}

func TestOneDNNName(t *testing.T) {
	es := oneDNNTestEngines(t)
	if len(es) == 0 {
		t.Skip("no oneDNN")
	}
	e := es[0].e.(*OneDNNEngine)
	t.Logf("%s", e.Name())
	if !strings.Contains(e.Name(), e.ISA()) || e.Impl() == "" {
		t.Errorf("Name %q lacks the ISA %q or the implementation %q", e.Name(), e.ISA(), e.Impl())
	}
	// Options.Threads is the OpenMP team size on the engine's thread.
	var threads int
	e.do(func() { threads = e.lib.MaxThreads() })
	if threads != 2 {
		t.Errorf("omp_get_max_threads on the engine's thread = %d, want Options.Threads = 2", threads)
	}
	// On a CPU with AVX512_BF16 (and no AMX) oneDNN must use its native
	// bf16 kernels, not an emulation.
	f := hostFeatures()
	if f.AVX512BF16 && !f.AMXBF16 && e.ISA() != "avx512_core_bf16" {
		t.Errorf("oneDNN dispatches %s on a CPU with avx512_bf16", e.ISA())
	}
}

func TestLoadBadLibraryPath(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "libdnnl-missing.so.2")
	if _, _, err := Load(Options{Kind: KindOneDNN, LibraryPath: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(onednn, %s) error = %v, want one naming the file", bad, err)
	}
	// A file that is not a shared library.
	notLib := filepath.Join(t.TempDir(), "libdnnl.so.2")
	if err := os.WriteFile(notLib, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(Options{Kind: KindOneDNN, LibraryPath: notLib}); err == nil || !strings.Contains(err.Error(), notLib) {
		t.Errorf("Load(onednn, %s) error = %v, want one naming the file", notLib, err)
	}
	// auto falls back to the Go engine with a warning naming the cause
	// (SmallRows set: oneDNN wanted above 16 rows on any CPU).
	e, warn, err := Load(Options{LibraryPath: bad, SmallRows: 16})
	if err != nil {
		t.Fatalf("Load(auto, bad path): %v", err)
	}
	if _, ok := e.(*GoEngine); !ok || !strings.Contains(warn, bad) || strings.Contains(warn, "\n") {
		t.Errorf("Load(auto, bad path) = %T with warning %q; want the Go engine and one line naming %s", e, warn, bad)
	}
}

func isGoEngine(e Engine) bool {
	_, ok := e.(*GoEngine)
	return ok
}

func isOneDNN(e Engine) bool {
	_, ok := e.(*OneDNNEngine)
	return ok
}

func TestLoadAuto(t *testing.T) {
	e, warn, err := Load(Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("auto: %s (warning %q)", e.Name(), warn)
	goOnly := DefaultSmallRows() == math.MaxInt // the Go kernels win at every m here
	switch {
	case goOnly && !isGoEngine(e):
		t.Errorf("the Go kernels beat oneDNN at every m here but auto gave %s", e.Name())
	case !goOnly && len(oneDNNTestEngines(t)) > 0 && !isOneDNN(e):
		t.Errorf("oneDNN runs here but auto gave %s: %s", e.Name(), warn)
	}
}

// TestLoadWithoutNativeISA runs Load in a child process whose oneDNN is
// capped below avx512_core_bf16 (DNNL_MAX_CPU_ISA), as on a CPU without
// bf16 arithmetic: "onednn" must fail naming the ISA, "auto" must fall back
// to the Go engine with a one-line warning.
func TestLoadWithoutNativeISA(t *testing.T) {
	if isa := os.Getenv("BF16_TEST_CHILD_ISA"); isa != "" {
		_, _, err := Load(Options{Kind: KindOneDNN})
		if err == nil || !strings.Contains(err.Error(), "no native bf16") {
			t.Fatalf("Load(onednn) with oneDNN capped at %s: error %v", isa, err)
		}
		e, warn, err := Load(Options{SmallRows: 16}) // oneDNN wanted above 16 rows
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := e.(*GoEngine); !ok || !strings.Contains(warn, "no native bf16") || strings.Contains(warn, "\n") {
			t.Fatalf("Load(auto) = %s, warning %q", e.Name(), warn)
		}
		return
	}
	if len(oneDNNTestEngines(t)) == 0 {
		t.Skip("no oneDNN")
	}
	for _, isa := range []string{"AVX2", "AVX512_CORE"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadWithoutNativeISA$", "-test.count=1")
		cmd.Env = append(os.Environ(), "DNNL_MAX_CPU_ISA="+isa, "BF16_TEST_CHILD_ISA="+isa)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Errorf("oneDNN capped at %s: %v\n%s", isa, err, out)
		}
	}
}

// TestOMPWaitPolicyReachesLibgomp checks that the OMP_WAIT_POLICY Load sets
// is in the C environment that libgomp reads (os.Setenv reaches libc
// through purego's runtime hooks, with and without cgo).
func TestOMPWaitPolicyReachesLibgomp(t *testing.T) {
	if len(oneDNNTestEngines(t)) == 0 {
		t.Skip("no oneDNN")
	}
	want, ok := os.LookupEnv(EnvOMPWaitPolicy)
	if !ok {
		t.Fatalf("%s is not set after loading oneDNN", EnvOMPWaitPolicy)
	}
	libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Skipf("libc: %v", err)
	}
	var getenv func(string) string
	purego.RegisterLibFunc(&getenv, libc, "getenv")
	if got := getenv(EnvOMPWaitPolicy); got != want {
		t.Errorf("C getenv(%s) = %q, Go's environment has %q", EnvOMPWaitPolicy, got, want)
	}
}
