// Package blas gives the model's ops one small, row-major, single-precision
// BLAS interface with two implementations: OpenBLAS loaded at run time with
// purego (no cgo), and a pure Go fallback built on gonum.
//
// Choose a backend with Load and an explicit Options value, or use Default,
// which loads once per process with the zero Options. The environment
// variable BLIPFLOW_BLAS (go|openblas|auto) picks the backend whenever
// Options.Backend is left empty.
//
// OpenBLAS keeps its configuration (kernel choice, thread count) per process:
// the kernel is fixed when the library is first loaded, and setting Threads
// on any OpenBLAS backend changes it for all of them.
package blas

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// Backend is a row-major single-precision BLAS. Its methods panic on
// arguments that do not describe valid matrices (negative sizes, leading
// dimensions too small, slices too short), as gonum's BLAS does: such calls
// are programming errors, not run-time conditions.
type Backend interface {
	// Name describes the implementation, e.g. "openblas 0.3.21 SkylakeX
	// (2 threads)" or "gonum (pure Go)".
	Name() string

	// Sgemm computes C = alpha*op(A)*op(B) + beta*C, where op(X) is X or Xᵀ
	// as transA/transB say, op(A) is m×k, op(B) is k×n and C is m×n, all
	// stored row-major with leading dimensions lda, ldb and ldc.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

	// Sgemv computes y = alpha*op(A)*x + beta*y, where A is an m×n
	// row-major matrix with leading dimension lda, op(A) is A or Aᵀ, and x
	// and y are strided by incX and incY (both positive).
	Sgemv(transA bool, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int)
}

// Kind names a backend implementation.
type Kind string

// The backends Load can return.
const (
	// KindAuto loads OpenBLAS when it is available and falls back to Go.
	KindAuto Kind = "auto"
	// KindGo is the pure Go implementation (gonum).
	KindGo Kind = "go"
	// KindOpenBLAS is OpenBLAS loaded with purego; loading fails when the
	// library is absent.
	KindOpenBLAS Kind = "openblas"
)

// EnvBackend is the environment variable consulted for the backend kind
// when Options.Backend is empty.
const EnvBackend = "BLIPFLOW_BLAS"

// CoreTypeLibrary is the Options.CoreType value that leaves OpenBLAS's own
// CPU detection alone.
const CoreTypeLibrary = "library"

// Options configures Load.
type Options struct {
	// Backend picks the implementation. Empty means the value of
	// BLIPFLOW_BLAS, or KindAuto when that is unset.
	Backend Kind

	// LibraryPath is the OpenBLAS shared library to load. Empty searches
	// the usual names and Debian/Ubuntu install folders.
	LibraryPath string

	// Threads sets OpenBLAS's thread count (process-wide). Zero keeps the
	// library default (OPENBLAS_NUM_THREADS or the number of cores). The Go
	// backend always uses GOMAXPROCS goroutines.
	Threads int

	// CoreType is the OpenBLAS kernel family to force through
	// OPENBLAS_CORETYPE before the library loads. Empty picks one from the
	// CPU's features unless OPENBLAS_CORETYPE is already set; CoreTypeLibrary
	// leaves OpenBLAS's own detection in charge; any other value (e.g.
	// "Haswell") is set as given. It has no effect once the library is
	// loaded in this process.
	CoreType string
}

// Load returns the backend opts asks for. With KindAuto it returns the Go
// backend and a one-line warning for the caller to log when OpenBLAS cannot
// be loaded; with KindOpenBLAS that failure is an error instead.
func Load(opts Options) (backend Backend, warning string, err error) {
	kind, err := resolveKind(opts.Backend)
	if err != nil {
		return nil, "", err
	}
	if opts.Threads < 0 {
		return nil, "", fmt.Errorf("blas: Threads %d is negative", opts.Threads)
	}
	switch kind {
	case KindGo:
		return Gonum{}, "", nil
	case KindOpenBLAS:
		ob, err := LoadOpenBLAS(opts)
		if err != nil {
			return nil, "", err
		}
		return ob, "", nil
	default: // KindAuto
		ob, err := LoadOpenBLAS(opts)
		if err != nil {
			return Gonum{}, fmt.Sprintf("blas: using pure Go gonum (several times slower): %v", err), nil
		}
		return ob, "", nil
	}
}

// resolveKind applies the BLIPFLOW_BLAS default and validates the result.
func resolveKind(k Kind) (Kind, error) {
	source := "Options.Backend"
	if k == "" {
		k = Kind(strings.ToLower(strings.TrimSpace(os.Getenv(EnvBackend))))
		source = EnvBackend
	}
	switch k {
	case "", KindAuto:
		return KindAuto, nil
	case KindGo, KindOpenBLAS:
		return k, nil
	}
	return "", fmt.Errorf("blas: %s %q: want %s, %s or %s", source, k, KindAuto, KindGo, KindOpenBLAS)
}

// defaultBackend caches the result of Default.
var defaultBackend struct {
	once    sync.Once
	backend Backend
	warning string
	err     error
}

// Default loads a backend with the zero Options (honouring BLIPFLOW_BLAS)
// the first time it is called and returns that same result, warning
// included, on every later call.
func Default() (backend Backend, warning string, err error) {
	d := &defaultBackend
	d.once.Do(func() { d.backend, d.warning, d.err = Load(Options{}) })
	return d.backend, d.warning, d.err
}
