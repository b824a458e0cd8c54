package kernels

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// clangPath finds a clang able to compile CUDA: $BLIPFLOW_CLANG, else the
// first clang or clang-NN on PATH. CI installs one (.ci/install-clang.sh)
// and sets BLIPFLOW_REQUIRE_CLANG so the check fails rather than skips.
func clangPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("BLIPFLOW_CLANG"), "clang"}
	for v := 19; v >= 14; v-- {
		candidates = append(candidates, "clang-"+itoa(v))
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("BLIPFLOW_REQUIRE_CLANG") != "" {
		t.Fatal("BLIPFLOW_REQUIRE_CLANG is set but no clang is on PATH (run .ci/install-clang.sh)")
	}
	t.Skip("no clang on PATH: kernel sources not checked (set BLIPFLOW_REQUIRE_CLANG=1 to require it)")
	return ""
}

func itoa(v int) string { return string(rune('0'+v/10)) + string(rune('0'+v%10)) }

var entryRE = regexp.MustCompile(`(?m)^\.visible \.entry ([A-Za-z_][A-Za-z0-9_]*)\(`)

// TestKernelSourcesCompileToPTX compiles every kernel file for sm_80 with
// clang (no CUDA installation: the builtins NVRTC provides come from
// testdata/clang_prelude.h) and checks it defines exactly its entries.
func TestKernelSourcesCompileToPTX(t *testing.T) {
	clang := clangPath(t)
	prelude, err := filepath.Abs("testdata/clang_prelude.h")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, file := range Files() {
		t.Run(file, func(t *testing.T) {
			src, err := FileSource(file)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, file)
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(clang, "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib",
				"--cuda-gpu-arch=sm_80", "-Xclang", "-target-feature", "-Xclang", "+ptx70",
				"-std=c++14", "-Wall", "-Werror", "-include", prelude, "-S", "-o", "-", path)
			out, err := cmd.Output()
			if err != nil {
				stderr := ""
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("clang failed on %s: %v\n%s", file, err, stderr)
			}
			var got []string
			for _, m := range entryRE.FindAllStringSubmatch(string(out), -1) {
				got = append(got, m[1])
			}
			want := slices.Clone(Entries[file])
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("%s defines kernels %v, Entries lists %v", file, got, want)
			}
		})
	}
}
