package bf16

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// Engine multiplies fp32 activations by bf16 weights.
type Engine interface {
	// Name describes the implementation, e.g. "onednn 2.6.3
	// (avx512_core_bf16)" or "go avx512_bf16 kernels, 2 threads".
	Name() string
	// MulT computes out[m][n] = sum_k x[m][k]*W[n][k] (+ bias[n] when bias
	// != nil) with fp32 accumulation. x is [m][W.Cols] fp32 row-major, out
	// is [m][W.Rows]. Safe for concurrent use. It panics on arguments that
	// do not describe valid matrices.
	MulT(x []float32, m int, w *Matrix, bias []float32, out []float32)
}

// The engine kinds Options.Kind names.
const (
	KindAuto   = "auto"
	KindOneDNN = "onednn"
	KindGo     = "go"
)

// EnvRequireOneDNN, when set to 1, makes the tests fail instead of skip when
// oneDNN cannot be loaded (CI sets it after installing libdnnl2).
const EnvRequireOneDNN = "BLIPFLOW_REQUIRE_ONEDNN"

// Options configures Load.
type Options struct {
	// Kind is "auto" (or empty): oneDNN when it loads and runs bf16 here,
	// with this package's kernels for few rows, else the Go kernels (and
	// the Go kernels alone where they beat oneDNN at every m, see
	// DefaultSmallRows, unless SmallRows is set);
	// "onednn": the same but an error when oneDNN cannot run; "go": this
	// package's kernels only.
	Kind string
	// LibraryPath is the oneDNN shared library; empty searches for
	// libdnnl.so.2 in the loader's path and the usual folders.
	LibraryPath string
	// Threads is the number of threads a product uses; 0 means GOMAXPROCS.
	// For oneDNN it sets the OpenMP thread count (omp_set_num_threads) of
	// the one OS thread that runs oneDNN, overriding OMP_NUM_THREADS.
	Threads int
	// SmallRows is the largest m the oneDNN engine hands to this package's
	// own kernels; 0 means the crossover for this CPU (DefaultSmallRows)
	// and a negative value sends every m to oneDNN.
	SmallRows int
}

// Load returns the fastest engine this machine can run, with a one-line
// warning when it falls back from what "auto" would prefer (oneDNN absent,
// or no native bf16 arithmetic), or an error when o asks for something that
// cannot run.
func Load(o Options) (Engine, string, error) {
	if o.Threads < 0 {
		return nil, "", fmt.Errorf("bf16: Options.Threads %d is negative", o.Threads)
	}
	switch strings.ToLower(o.Kind) {
	case KindGo:
		return NewGoEngine(o.Threads), "", nil
	case KindOneDNN:
		e, err := loadOneDNN(o)
		if err != nil {
			return nil, "", err
		}
		return e, "", nil
	case "", KindAuto:
		if o.SmallRows == 0 && DefaultSmallRows() == math.MaxInt {
			// The Go kernels beat oneDNN at every m on this CPU.
			return NewGoEngine(o.Threads), "", nil
		}
		e, err := loadOneDNN(o)
		if err == nil {
			return e, "", nil
		}
		g := NewGoEngine(o.Threads)
		return g, fmt.Sprintf("bf16: oneDNN unavailable, using %s: %v", g.Name(), oneLine(err)), nil
	default:
		return nil, "", fmt.Errorf("bf16: unknown engine kind %q (want auto, onednn or go)", o.Kind)
	}
}

// oneLine joins a possibly multi-line error message into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// requireOneDNN reports whether the environment demands oneDNN (tests).
func requireOneDNN() bool { return os.Getenv(EnvRequireOneDNN) == "1" }

var errNoOneDNN = errors.New("bf16: oneDNN is only supported on linux/amd64")
