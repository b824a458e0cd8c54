// Package kernels holds blipflow's CUDA C kernels (src/*.cu, embedded) and
// builds them: compiled once by NVRTC for the card's architecture, cached on
// disk under the user cache directory keyed by a hash of the source, the
// architecture and the NVRTC version, and loaded as one module.
package kernels

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"blipflow/model/cuda"
)

//go:embed src/*.cu src/common.cuh
var sources embed.FS

// Entries lists, per source file, the kernels it must define. The CI check
// compiles each file and looks for each entry; Load looks each one up.
var Entries = map[string][]string{
	"attention.cu":   {"attention"},
	"convert.cu":     {"f32_to_bf16_kernel", "bf16_to_f32_kernel"},
	"elementwise.cu": {"activate", "add", "mul", "add_bias"},
	"embed.cu":       {"embed_bf16", "embed_f32"},
	"glue.cu":        {"split_columns", "slice_steps", "concat_steps", "splice_queries"},
	"kvcache.cu":     {"kv_write", "kv_write_slots", "gather_rows"},
	"norm.cu":        {"layer_norm", "rms_norm"},
	"sample.cu":      {"argmax_rows", "repetition_penalty", "set_tokens", "divide_scores", "top_k_mask", "top_p_mask", "sample_rows"},
}

// Constants shared with the sources.
const (
	// AttentionTile is ATTN_TILE: keys staged per shared-memory tile.
	AttentionTile = 32
	// MaxHeadDim is 32·ATTN_DCHUNKS, the largest head the attention kernel holds.
	MaxHeadDim = 128
	// SampleThreads is SAMPLE_THREADS, the block size of the sampling kernels.
	SampleThreads = 256
)

// Activation kinds of the activate kernel (ACT_*).
const (
	ActGELU      = 0
	ActGELUTanh  = 1
	ActQuickGELU = 2
	ActReLU      = 3
)

// Files returns the kernel source file names in a fixed order.
func Files() []string {
	names := make([]string, 0, len(Entries))
	for n := range Entries {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// FileSource returns one kernel file preceded by the shared helpers, as it
// is compiled.
func FileSource(name string) (string, error) {
	common, err := fs.ReadFile(sources, "src/common.cuh")
	if err != nil {
		return "", err
	}
	body, err := fs.ReadFile(sources, "src/"+name)
	if err != nil {
		return "", fmt.Errorf("kernel source %s: %w", name, err)
	}
	return string(common) + "\n" + string(body), nil
}

// Source returns every kernel file after the shared helpers: the single
// translation unit NVRTC compiles.
func Source() string {
	common, _ := fs.ReadFile(sources, "src/common.cuh")
	var b strings.Builder
	b.Write(common)
	for _, name := range Files() {
		body, _ := fs.ReadFile(sources, "src/"+name)
		fmt.Fprintf(&b, "\n// ---- %s\n", name)
		b.Write(body)
	}
	return b.String()
}

// CacheKey identifies a compiled module: the source, architecture and
// compiler version.
func CacheKey(source, arch, nvrtcVersion string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", arch, nvrtcVersion)
	h.Write([]byte(source))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// CacheDir is where compiled modules are kept: $BLIPFLOW_KERNEL_CACHE, else
// os.UserCacheDir()/blipflow/kernels.
func CacheDir() (string, error) {
	if d := os.Getenv("BLIPFLOW_KERNEL_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernel cache: %w", err)
	}
	return filepath.Join(d, "blipflow", "kernels"), nil
}

// Compiler turns source into a cubin for an architecture.
type Compiler func(source, name, arch string) ([]byte, error)

// Cubin returns the compiled module for arch from the disk cache, compiling
// it with compile and storing it on a miss. A cache that cannot be written
// is not an error: the module is simply compiled again next time.
func Cubin(dir, arch, nvrtcVersion string, compile Compiler) ([]byte, error) {
	src := Source()
	path := filepath.Join(dir, CacheKey(src, arch, nvrtcVersion)+".cubin")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return b, nil
	}
	cubin, err := compile(src, "blipflow_kernels.cu", arch)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		tmp, err := os.CreateTemp(dir, ".cubin-*")
		if err == nil {
			_, werr := tmp.Write(cubin)
			cerr := tmp.Close()
			if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
				os.Remove(tmp.Name())
			}
		}
	}
	return cubin, nil
}

// Set is the loaded kernels of one context, by name.
type Set struct {
	Module *cuda.Module
	fns    map[string]cuda.Function
}

// Load compiles (or reads from the cache) and loads every kernel on c.
// Call inside c.Do.
func Load(c *cuda.Context) (*Set, error) {
	version, err := cuda.NVRTCVersion()
	if err != nil {
		return nil, err
	}
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	compile := func(src, name, arch string) ([]byte, error) {
		return cuda.Compile(src, name, arch, "--std=c++14", "-default-device")
	}
	cubin, err := Cubin(dir, c.Arch(), version, compile)
	if err != nil {
		return nil, err
	}
	m, err := c.LoadModule(cubin)
	if err != nil {
		return nil, fmt.Errorf("loading kernels for %s: %w", c.Arch(), err)
	}
	s := &Set{Module: m, fns: map[string]cuda.Function{}}
	for _, file := range Files() {
		for _, name := range Entries[file] {
			f, err := m.Function(name)
			if err != nil {
				m.Unload()
				return nil, err
			}
			s.fns[name] = f
		}
	}
	return s, nil
}

// Get returns a loaded kernel; a name not in Entries is a programming error.
func (s *Set) Get(name string) cuda.Function {
	f, ok := s.fns[name]
	if !ok {
		panic("kernels: no kernel " + name)
	}
	return f
}
