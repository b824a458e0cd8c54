package nn

import (
	"strings"
	"testing"

	"blipflow/model/bf16"
	"blipflow/model/blas"
)

func TestOpenCPUDTypes(t *testing.T) {
	native, _ := bf16.Supported()
	for _, c := range []struct {
		dtype string
		want  DType
	}{
		{"fp32", F32},
		{"bf16", BF16},
		{"BF16", BF16},
		{"auto", map[bool]DType{true: BF16, false: F32}[native]},
		{"", map[bool]DType{true: BF16, false: F32}[native]},
	} {
		ops, warnings, err := OpenCPU(BackendOptions{BLAS: blas.Gonum{}, DType: c.dtype, BF16: bf16.Options{Kind: bf16.KindGo}})
		if err != nil {
			t.Fatalf("dtype %q: %v", c.dtype, err)
		}
		if ops.WeightDType() != c.want || (c.want == BF16) != (ops.BF16 != nil) {
			t.Errorf("dtype %q: weights %s, bf16 engine %v; want %s", c.dtype, ops.WeightDType(), ops.BF16, c.want)
		}
		if c.want == F32 && (c.dtype == "auto" || c.dtype == "") && len(warnings) != 1 {
			t.Errorf("dtype %q fell back to fp32 with warnings %q, want one line saying why", c.dtype, warnings)
		}
	}
	if _, _, err := OpenCPU(BackendOptions{BLAS: blas.Gonum{}, DType: "fp16"}); err == nil || !strings.Contains(err.Error(), "fp16") {
		t.Errorf("dtype fp16: %v, want an error naming it", err)
	}
	if _, _, err := OpenCPU(BackendOptions{BLAS: blas.Gonum{}, DType: "bf16", BF16: bf16.Options{Kind: "tpu"}}); err == nil || !strings.Contains(err.Error(), "bf16") {
		t.Errorf("bf16 with an engine that cannot load: %v, want a clear error", err)
	}
}
