package nn

import (
	"fmt"
	"os"
	"strings"

	"blipflow/model/bf16"
	"blipflow/model/blas"
)

// The values of BackendOptions.DType.
const (
	DTypeAuto = "auto"
	DTypeBF16 = string(BF16)
	DTypeFP32 = string(F32)
)

// envOpenBLASThreads is OpenBLAS's own thread-count variable; when a user
// sets it, OpenCPU leaves OpenBLAS's threads as it says.
const envOpenBLASThreads = "OPENBLAS_NUM_THREADS"

// BackendOptions choose the CPU backend: its BLAS (fp32 products), its
// weight dtype and the bf16 engine that multiplies by bf16 weights.
type BackendOptions struct {
	// BLAS is the fp32 matrix backend; nil loads blas.Default().
	BLAS blas.Backend
	// DType is "auto" (or empty), "bf16" or "fp32". Auto picks bf16 where
	// the CPU has AVX512-BF16 or AMX-BF16 and a bf16 engine loads, else
	// fp32 with one warning saying why.
	DType string
	// BF16 configures the bf16 engine.
	BF16 bf16.Options
}

// OpenCPU builds CPU ops as o says. It returns one-line warnings about
// fallbacks (no OpenBLAS, no oneDNN, fp32 under auto), and an error when an
// explicit choice cannot run.
//
// With bf16 weights it sets OpenBLAS to one thread (see serialOpenBLAS).
func OpenCPU(o BackendOptions) (*CPU, []string, error) {
	var warnings []string
	b := o.BLAS
	if b == nil {
		var w string
		var err error
		if b, w, err = blas.Default(); err != nil {
			return nil, nil, err
		}
		if w != "" {
			warnings = append(warnings, w)
		}
	}
	switch dt := strings.ToLower(o.DType); dt {
	case DTypeFP32:
		return NewCPU(b), warnings, nil
	case DTypeBF16:
		e, w, err := bf16.Load(o.BF16)
		if err != nil {
			return nil, nil, fmt.Errorf("--dtype bf16: no bf16 matrix engine can run here: %w", err)
		}
		if w != "" {
			warnings = append(warnings, w)
		}
		if native, feats := bf16.Supported(); !native {
			warnings = append(warnings, fmt.Sprintf("dtype bf16: this CPU has no AVX512-BF16 or AMX-BF16 (%s); bf16 products run emulated by %s", feats, e.Name()))
		}
		serialOpenBLAS(b)
		return NewCPUBF16(b, e), warnings, nil
	case DTypeAuto, "":
		native, feats := bf16.Supported()
		if !native {
			return NewCPU(b), append(warnings, fmt.Sprintf("dtype auto: fp32, this CPU has no AVX512-BF16 or AMX-BF16 (%s)", feats)), nil
		}
		e, w, err := bf16.Load(o.BF16)
		if err != nil {
			return NewCPU(b), append(warnings, fmt.Sprintf("dtype auto: fp32, no bf16 engine loads: %v", err)), nil
		}
		if w != "" {
			warnings = append(warnings, w)
		}
		serialOpenBLAS(b)
		return NewCPUBF16(b, e), warnings, nil
	default:
		return nil, nil, fmt.Errorf("dtype %q: want auto, bf16 or fp32", o.DType)
	}
}

// serialOpenBLAS sets OpenBLAS, when b is OpenBLAS, to one thread
// (process-wide) unless OPENBLAS_NUM_THREADS is set. With bf16 weights
// OpenBLAS runs only the fp32 products between the bf16 ones (attention,
// the Q-Former), and its own threads spin (sched_yield) for a while after
// each call, taking the cores from the bf16 kernels and oneDNN's threads
// that run next (ViT-g, bf16: 2.29 s per image with two OpenBLAS threads,
// 1.84-1.91 s with one). The ops then spread products over the cores
// themselves (SerialBLAS). The fp32 ops keep OpenBLAS's threads: there
// every product is OpenBLAS's, and its multithreaded sgemv read the
// weights faster (decode step at batch 1 20% faster than two goroutines'
// single-threaded sgemv).
func serialOpenBLAS(b blas.Backend) {
	if ob, ok := b.(*blas.OpenBLAS); ok && os.Getenv(envOpenBLASThreads) == "" {
		ob.SetThreads(1)
	}
}
