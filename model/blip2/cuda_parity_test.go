package blip2

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/cuda"
	"blipflow/model/cuda/ops"
	"blipflow/model/generate"
)

// The CUDA parity tests run the fixture checkpoints on the GPU. They skip
// without a driver unless BLIPFLOW_REQUIRE_CUDA is set (tools/gpu_check.sh
// sets it). FP32 mode (TF32 off) must give the fixtures' ids exactly and
// tensors within the CPU's tolerance; BF16 mode stays within bf16's bounds.

// cudaBF16Bound is the largest error, relative to the largest value, of a
// bf16 forward pass of the tiny fixtures: a few units of bf16's 2^-9 per
// chained product (see the CPU bf16 accuracy test).
const cudaBF16Bound = 16.0 / 512

func cudaModel(t *testing.T, name string, mode ops.Mode) *Model {
	t.Helper()
	if err := cuda.Available(); err != nil {
		if os.Getenv("BLIPFLOW_REQUIRE_CUDA") != "" {
			t.Fatalf("BLIPFLOW_REQUIRE_CUDA is set: %v", err)
		}
		t.Skipf("hardware: no GPU: %v", err)
	}
	b, err := ops.Open(0, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	m, err := Load(fixtures.Path(name, "model"), ops.NewOps(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func relativeError(got, want []float32) float64 {
	var scale, worst float64
	for i := range want {
		scale = math.Max(scale, math.Abs(float64(want[i])))
		worst = math.Max(worst, math.Abs(float64(got[i])-float64(want[i])))
	}
	return worst / scale
}

func TestCUDAImageParity(t *testing.T) {
	for _, mode := range []ops.Mode{ops.FP32, ops.BF16} {
		for _, name := range []string{"opt-tiny", "t5-tiny"} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				g := loadGolden(t, name)
				m := cudaModel(t, name, mode)
				for _, c := range []string{"c1", "c2"} {
					out, err := m.EncodeImages(context.Background(), g.tensor(t, c+".pixel_values"), 1)
					if err != nil {
						t.Fatal(err)
					}
					for what, got := range map[string][]float32{"vision.last_hidden_state": out.Vision,
						"qformer.last_hidden_state": out.Queries, "language_projection": out.Projected} {
						want := g.tensor(t, c+"."+what)
						if mode == ops.FP32 {
							assertClose(t, c+"."+what, got, want)
							continue
						}
						if e := relativeError(got, want); e > cudaBF16Bound || math.IsNaN(e) {
							t.Errorf("%s.%s: bf16 relative error %.3g above %.3g", c, what, e, cudaBF16Bound)
						} else {
							t.Logf("%s.%s: bf16 relative error %.3g", c, what, e)
						}
					}
				}
			})
		}
	}
}

// TestCUDAGenerationParity replays every golden generation case; in fp32
// mode the ids must be the fixtures' exactly, in bf16 mode the share of
// matching ids is reported (greedy search on random weights amplifies any
// rounding).
func TestCUDAGenerationParity(t *testing.T) {
	for _, mode := range []ops.Mode{ops.FP32, ops.BF16} {
		for _, name := range []string{"opt-tiny", "t5-tiny"} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				g := loadGolden(t, name)
				m := cudaModel(t, name, mode)
				base, err := generate.LoadConfig(fixtures.Path(name, "model"))
				if err != nil {
					t.Fatal(err)
				}
				same, total := 0, 0
				for _, c := range g.Cases {
					if c.OutputIDs == nil {
						continue
					}
					r := runGenerationCase(t, g, m, c, base)
					for i, want := range r.want {
						total++
						if fmt.Sprint(r.got[i]) == fmt.Sprint(want) {
							same++
						} else if mode == ops.FP32 {
							t.Errorf("%s row %d: got %v, want %v", c.Name, i, r.got[i], want)
						}
					}
				}
				t.Logf("%s %s: %d of %d generated rows equal the fixtures", name, mode, same, total)
			})
		}
	}
}
