package bf16

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneDNNTestEngines returns oneDNN for every m and oneDNN with the Go
// kernels below the crossover, or nothing (skipping, or failing when
// BLIPFLOW_REQUIRE_ONEDNN=1) when oneDNN cannot run here.
func oneDNNTestEngines(t testing.TB) []namedEngine {
	t.Helper()
	all, err := loadOneDNN(Options{Threads: 2, SmallRows: -1})
	if err != nil {
		if requireOneDNN() {
			t.Fatalf("%s=1 but oneDNN cannot run: %v", EnvRequireOneDNN, err)
		}
		t.Logf("oneDNN not tested: %v", err)
		return nil
	}
	mixed, err := loadOneDNN(Options{Threads: 2, SmallRows: 4})
	if err != nil {
		t.Fatal(err)
	}
	return []namedEngine{{"onednn", all}, {"onednn+go", mixed}}
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
	// auto falls back to the Go engine with a warning naming the cause.
	e, warn, err := Load(Options{LibraryPath: bad})
	if err != nil {
		t.Fatalf("Load(auto, bad path): %v", err)
	}
	if _, ok := e.(*GoEngine); !ok || !strings.Contains(warn, bad) || strings.Contains(warn, "\n") {
		t.Errorf("Load(auto, bad path) = %T with warning %q; want the Go engine and one line naming %s", e, warn, bad)
	}
}

func TestLoadAuto(t *testing.T) {
	e, warn, err := Load(Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("auto: %s (warning %q)", e.Name(), warn)
	if _, ok := e.(*OneDNNEngine); !ok && requireOneDNN() {
		t.Errorf("%s=1 but auto gave %s: %s", EnvRequireOneDNN, e.Name(), warn)
	}
}
