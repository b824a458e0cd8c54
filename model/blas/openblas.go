package blas

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ebitengine/purego"

	"blipflow/internal/dynlib"
)

// EnvCoreType is OpenBLAS's own variable forcing its kernel family; it is
// read once, when the library is loaded.
const EnvCoreType = "OPENBLAS_CORETYPE"

// CBLAS enumeration values (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// coreTypeState records the process-wide side effect of loading: it
// serialises setting OPENBLAS_CORETYPE and loading the library, so concurrent
// loads agree on the kernel, and remembers which value this package set so
// later loads still report why it was chosen.
var coreTypeState struct {
	sync.Mutex
	setValue, setOrigin string
}

// OpenBLAS is the backend that calls an OpenBLAS shared library through
// purego. Its methods are safe for concurrent use.
type OpenBLAS struct {
	path           string
	coreTypeOrigin string

	sgemm      func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	sgemv      func(order, trans, m, n int32, alpha float32, a *float32, lda int32, x *float32, incX int32, beta float32, y *float32, incY int32)
	setThreads func(n int32)
	getThreads func() int32
	coreName   func() string
	config     func() string
}

// LoadOpenBLAS loads OpenBLAS as opts describes (LibraryPath, Threads,
// CoreType; Backend is ignored). Before the library's first load in this
// process it sets OPENBLAS_CORETYPE from the CPU's features unless the
// variable is already set or opts.CoreType says otherwise.
func LoadOpenBLAS(opts Options) (*OpenBLAS, error) {
	if opts.Threads < 0 {
		return nil, fmt.Errorf("openblas: Threads %d is negative", opts.Threads)
	}
	coreTypeState.Lock()
	defer coreTypeState.Unlock()

	origin, err := applyCoreType(opts.CoreType)
	if err != nil {
		return nil, err
	}
	handle, path, err := openLibrary(opts.LibraryPath)
	if err != nil {
		return nil, err
	}
	ob := &OpenBLAS{path: path, coreTypeOrigin: origin}
	if err := ob.bind(handle); err != nil {
		_ = purego.Dlclose(handle)
		return nil, fmt.Errorf("openblas %s: %w", path, err)
	}
	if opts.Threads > 0 {
		ob.SetThreads(opts.Threads)
	}
	return ob, nil
}

// applyCoreType sets OPENBLAS_CORETYPE as requested and says where the
// value in force came from, for Name. The caller holds coreTypeState.
func applyCoreType(requested string) (origin string, err error) {
	switch requested {
	case CoreTypeLibrary:
		return "OpenBLAS's own CPU detection", nil
	case "":
		if v, ok := os.LookupEnv(EnvCoreType); ok {
			if v == coreTypeState.setValue {
				return coreTypeState.setOrigin, nil
			}
			return fmt.Sprintf("%s=%s from the environment", EnvCoreType, v), nil
		}
		ct := coreTypeFor(hostFeatures())
		if ct == "" {
			return "OpenBLAS's own CPU detection (no AVX2/AVX-512)", nil
		}
		requested = ct
		origin = fmt.Sprintf("%s=%s from CPU features", EnvCoreType, ct)
	default:
		origin = fmt.Sprintf("%s=%s from Options.CoreType", EnvCoreType, requested)
	}
	if err := os.Setenv(EnvCoreType, requested); err != nil {
		return "", fmt.Errorf("openblas: set %s=%s: %w", EnvCoreType, requested, err)
	}
	coreTypeState.setValue, coreTypeState.setOrigin = requested, origin
	return origin, nil
}

// candidatePaths lists where OpenBLAS is looked for, most specific first:
// the loader's search path, then Debian/Ubuntu alternatives folders and
// common hand-built install prefixes.
func candidatePaths() []string {
	paths := []string{"libopenblas.so.0", "libopenblas.so"}
	multiarch := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	var dirs []string
	if multiarch != "" {
		for _, variant := range []string{"openblas-pthread", "openblas-openmp", "openblas-serial"} {
			dirs = append(dirs, filepath.Join("/usr/lib", multiarch, variant))
		}
		dirs = append(dirs, filepath.Join("/usr/lib", multiarch))
	}
	dirs = append(dirs, "/usr/lib64", "/usr/lib", "/usr/local/lib", "/opt/OpenBLAS/lib")
	for _, dir := range dirs {
		paths = append(paths, filepath.Join(dir, "libopenblas.so.0"), filepath.Join(dir, "libopenblas.so"))
		versioned, _ := filepath.Glob(filepath.Join(dir, "libopenblasp-r0*.so"))
		paths = append(paths, versioned...)
	}
	return paths
}

// openLibrary opens override, or the first candidate path that loads.
func openLibrary(override string) (handle uintptr, path string, err error) {
	const mode = purego.RTLD_NOW | purego.RTLD_LOCAL
	if override != "" {
		h, err := purego.Dlopen(override, mode)
		if err != nil {
			return 0, "", fmt.Errorf("openblas: %w", err)
		}
		return h, override, nil
	}
	var tried []string
	var firstErr error
	for _, p := range candidatePaths() {
		if strings.ContainsRune(p, '/') {
			if _, statErr := os.Stat(p); statErr != nil {
				continue
			}
		}
		h, err := purego.Dlopen(p, mode)
		if err == nil {
			return h, p, nil
		}
		tried = append(tried, p)
		if firstErr == nil {
			firstErr = err
		}
	}
	return 0, "", fmt.Errorf("openblas: library not found (tried %s; first error: %v); install it with .ci/install-openblas.sh or set Options.LibraryPath",
		strings.Join(tried, ", "), firstErr)
}

// bind looks up the symbols the backend calls.
func (ob *OpenBLAS) bind(handle uintptr) error {
	return dynlib.Bind(handle,
		dynlib.Symbol{Name: "cblas_sgemm", Fn: &ob.sgemm},
		dynlib.Symbol{Name: "cblas_sgemv", Fn: &ob.sgemv},
		dynlib.Symbol{Name: "openblas_set_num_threads", Fn: &ob.setThreads},
		dynlib.Symbol{Name: "openblas_get_num_threads", Fn: &ob.getThreads},
		dynlib.Symbol{Name: "openblas_get_corename", Fn: &ob.coreName},
		dynlib.Symbol{Name: "openblas_get_config", Fn: &ob.config},
	)
}

// Name reports the library's build configuration, the kernel in use, the
// thread count and why that kernel was chosen.
func (ob *OpenBLAS) Name() string {
	return fmt.Sprintf("openblas %s: kernel %s, %d threads (%s)", ob.path, ob.CoreName(), ob.Threads(), ob.coreTypeOrigin)
}

// CoreName is the kernel family OpenBLAS uses, e.g. "SkylakeX" or
// "Prescott" (openblas_get_corename).
func (ob *OpenBLAS) CoreName() string { return strings.TrimSpace(ob.coreName()) }

// Config is OpenBLAS's build description, e.g. "OpenBLAS 0.3.21
// DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64" (openblas_get_config).
func (ob *OpenBLAS) Config() string { return strings.TrimSpace(ob.config()) }

// openblasThreads mirrors OpenBLAS's process-wide thread count once read
// or set through this package (0 until then), so that Threads, which
// callers that split products themselves ask before each one, does not
// call into the library.
var openblasThreads atomic.Int32

// Threads is the number of threads OpenBLAS uses for large operations.
func (ob *OpenBLAS) Threads() int {
	if n := openblasThreads.Load(); n > 0 {
		return int(n)
	}
	n := ob.getThreads()
	openblasThreads.Store(n)
	return int(n)
}

// SetThreads sets OpenBLAS's thread count for the whole process.
func (ob *OpenBLAS) SetThreads(n int) {
	if n < 1 {
		panic(fmt.Sprintf("openblas: SetThreads(%d): want >= 1", n))
	}
	ob.setThreads(int32(n))
	openblasThreads.Store(int32(n))
}

// Sgemm implements Backend.
func (ob *OpenBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k > 0 && sgemmAsGemv(ob.Sgemv, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	ob.sgemm(cblasRowMajor, cblasTranspose(transA), cblasTranspose(transB), int32(m), int32(n), int32(k),
		alpha, first(a), int32(lda), first(b), int32(ldb), beta, first(c), int32(ldc))
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
}

// Sgemv implements Backend.
func (ob *OpenBLAS) Sgemv(transA bool, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	lenX, lenY := checkSgemv(transA, m, n, a, lda, x, incX, y, incY)
	if lenX == 0 || lenY == 0 {
		// OpenBLAS returns early here without scaling y; match Gonum.
		scaleVector(lenY, beta, y, incY)
		return
	}
	ob.sgemv(cblasRowMajor, cblasTranspose(transA), int32(m), int32(n), alpha, first(a), int32(lda),
		first(x), int32(incX), beta, first(y), int32(incY))
	runtime.KeepAlive(a)
	runtime.KeepAlive(x)
	runtime.KeepAlive(y)
}

func cblasTranspose(t bool) int32 {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
}

// first points at s[0], or is nil for an empty slice (which the library
// never reads: it is only empty when the matching dimension is zero).
func first(s []float32) *float32 {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}
