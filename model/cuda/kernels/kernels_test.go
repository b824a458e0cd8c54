package kernels

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryFileIsListedAndEmbedded(t *testing.T) {
	files, err := sources.ReadDir("src")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".cu") {
			if _, ok := Entries[f.Name()]; !ok {
				t.Errorf("src/%s has no Entries line", f.Name())
			}
		}
	}
	src := Source()
	for _, file := range Files() {
		for _, k := range Entries[file] {
			if !strings.Contains(src, "void "+k+"(") {
				t.Errorf("kernel %s of %s is not in Source()", k, file)
			}
		}
	}
	if strings.Contains(src, "#include") {
		t.Error("kernel sources include a header: NVRTC compiles them alone")
	}
}

func TestCubinIsCompiledOncePerArchAndCached(t *testing.T) {
	dir := t.TempDir()
	calls := map[string]int{}
	compile := func(src, name, arch string) ([]byte, error) {
		calls[arch]++
		return []byte("cubin for " + arch), nil
	}
	for range 2 {
		b, err := Cubin(dir, "sm_90", "12.8", compile)
		if err != nil || string(b) != "cubin for sm_90" {
			t.Fatalf("Cubin = %q, %v", b, err)
		}
	}
	if calls["sm_90"] != 1 {
		t.Fatalf("compiled %d times for sm_90, want once (then cached)", calls["sm_90"])
	}
	if _, err := Cubin(dir, "sm_80", "12.8", compile); err != nil || calls["sm_80"] != 1 {
		t.Fatalf("another architecture was not compiled: %v %v", calls, err)
	}
	if _, err := Cubin(dir, "sm_90", "13.0", compile); err != nil || calls["sm_90"] != 2 {
		t.Fatalf("another NVRTC version reused the old module: %v %v", calls, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("cache holds %d files, want 3", len(entries))
	}
}

func TestCubinFailsWithCompilerErrorAndToleratesUnwritableCache(t *testing.T) {
	bad := errors.New("nvrtc: nvrtcCompileProgram: NVRTC_ERROR_COMPILATION (6)")
	if _, err := Cubin(t.TempDir(), "sm_90", "12.8", func(string, string, string) ([]byte, error) { return nil, bad }); !errors.Is(err, bad) {
		t.Fatalf("err = %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	b, err := Cubin(filepath.Join(file, "sub"), "sm_90", "12.8", func(string, string, string) ([]byte, error) { return []byte("x"), nil })
	if err != nil || string(b) != "x" {
		t.Fatalf("unwritable cache: %q, %v", b, err)
	}
}

func TestCacheKeyDependsOnEveryPart(t *testing.T) {
	k := CacheKey("src", "sm_90", "12.8")
	for _, other := range []string{CacheKey("src2", "sm_90", "12.8"), CacheKey("src", "sm_80", "12.8"), CacheKey("src", "sm_90", "12.9")} {
		if other == k {
			t.Fatal("cache key ignores a part")
		}
	}
}

func TestCacheDirHonoursEnv(t *testing.T) {
	t.Setenv("BLIPFLOW_KERNEL_CACHE", "/tmp/kc")
	if d, _ := CacheDir(); d != "/tmp/kc" {
		t.Fatalf("CacheDir = %s", d)
	}
	t.Setenv("BLIPFLOW_KERNEL_CACHE", "")
	if d, err := CacheDir(); err == nil && !strings.HasSuffix(d, filepath.Join("blipflow", "kernels")) {
		t.Fatalf("CacheDir = %s", d)
	}
}
