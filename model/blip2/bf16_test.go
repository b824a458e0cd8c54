package blip2

import (
	"context"
	"fmt"
	"math"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/bf16"
	"blipflow/model/blas"
	"blipflow/model/generate"
	"blipflow/model/nn"
)

// bf16 keeps 8 significant bits: rounding a value changes it by at most
// u = 2^-9 of itself. The native engines (VDPBF16PS, oneDNN) round the
// activations to bf16 as well, so one product x·Wᵀ moves by at most
// 2u·Σ|x_k·w_k|, and for terms of random sign the errors largely cancel
// (they grow like the square root of the terms, not their number). A forward pass chains L such
// products (each residual block adds its own), so the error relative to the
// largest output stays below L·u, L the bf16 products on the longest path:
// vision 2 blocks × 4 products + the patch embedding; the Q-Former (fp32)
// reads the vision output; the logits add 2 OPT blocks × 6 products and the
// head. The bf16 KV cache rounds each layer's keys and values once more
// (at most u each, moving a score by at most u of Σ|q·k| and an attention
// output by at most about u of the largest value: see
// nn.TestCachedAttentionBF16), one more rounding beside each of two of the
// six products counted per block, inside the same L·u. Measured errors are
// 1–5 u, well inside.
const bf16Unit = 1.0 / 512

// relErr returns the largest absolute difference relative to the largest
// |want|, and the root-mean-square difference relative to want's RMS.
func relErr(got, want []float32) (worst, rms float64) {
	var scale, sq, wsq float64
	for i := range want {
		scale = math.Max(scale, math.Abs(float64(want[i])))
		d := float64(got[i]) - float64(want[i])
		worst = math.Max(worst, math.Abs(d))
		sq += d * d
		wsq += float64(want[i]) * float64(want[i])
	}
	return worst / scale, math.Sqrt(sq / wsq)
}

func bf16Engines(t *testing.T) map[string]bf16.Engine {
	out := map[string]bf16.Engine{}
	// auto, the Go kernels alone and oneDNN for every product (auto may
	// be either of the others on a given CPU).
	for _, o := range []bf16.Options{{Kind: "auto"}, {Kind: "go"}, {Kind: "onednn", SmallRows: -1}} {
		e, _, err := bf16.Load(o)
		if err != nil {
			t.Logf("bf16 engine %s: %v", o.Kind, err)
			continue
		}
		out[e.Name()] = e
	}
	if len(out) == 0 {
		t.Fatal("no bf16 engine loads")
	}
	return out
}

func TestBF16Accuracy(t *testing.T) {
	g := loadGolden(t, "opt-tiny")
	ref := loadModel(t, "opt-tiny", blas.Gonum{})
	for name, e := range bf16Engines(t) {
		t.Run(name, func(t *testing.T) {
			m, err := Load(fixtures.Path("opt-tiny", "model"), nn.NewCPUBF16(blas.Gonum{}, e))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Vision.layers[0].fc1.W.DType() != nn.BF16 || m.LM.(*OPT).embed.DType() != nn.BF16 || m.QFormer.layers[0].self.query.W.DType() != nn.F32 {
				t.Fatal("bf16 model: vision and language model matrices must be bf16, the Q-Former fp32")
			}
			check := func(what string, got, want, fp32 []float32, bound float64) {
				t.Helper()
				worst, rms := relErr(got, want)
				fw, _ := relErr(got, fp32)
				t.Logf("%s: vs fixture max %.2e rms %.2e; vs fp32 path max %.2e (bound %.2e)", what, worst, rms, fw, bound)
				if worst > bound || fw > bound || math.IsNaN(worst) {
					t.Errorf("%s: bf16 error %.3g (fixture) / %.3g (fp32 path), bound %.3g", what, worst, fw, bound)
				}
			}
			layers := float64(len(m.Vision.layers)*4 + 1)
			for _, c := range []string{"c1", "c2"} {
				px := g.tensor(t, c+".pixel_values")
				out, err := m.EncodeImages(context.Background(), px, 1)
				if err != nil {
					t.Fatal(err)
				}
				want, err := ref.EncodeImages(context.Background(), px, 1)
				if err != nil {
					t.Fatal(err)
				}
				check(c+".vision", out.Vision, g.tensor(t, c+".vision.last_hidden_state"), want.Vision, layers*bf16Unit)
				check(c+".qformer", out.Queries, g.tensor(t, c+".qformer.last_hidden_state"), want.Queries, (layers+1)*bf16Unit)
			}
			lm := float64(len(m.LM.(*OPT).layers)*6 + 1)
			for _, c := range g.Cases {
				if c.Name != "c2" && c.Name != "c3" {
					continue
				}
				n := len(c.Images)
				px := imagesPixels(t, g, c.Name, n)
				img, err := m.EncodeImages(context.Background(), px, n)
				if err != nil {
					t.Fatal(err)
				}
				_, logits, err := m.prefillOPT(context.Background(), img, c.InputIDs, c.AttentionMask, 0, 0, true)
				if err != nil {
					t.Fatal(err)
				}
				rimg, err := ref.EncodeImages(context.Background(), px, n)
				if err != nil {
					t.Fatal(err)
				}
				_, rlogits, err := ref.prefillOPT(context.Background(), rimg, c.InputIDs, c.AttentionMask, 0, 0, true)
				if err != nil {
					t.Fatal(err)
				}
				check(c.Name+".logits", flat(logits), g.tensor(t, c.Name+".logits"), flat(rlogits), (layers+lm)*bf16Unit)
			}
			changed, total := greedyChanges(t, g, m)
			t.Logf("generated sequences of the fixture cases (greedy, beam search, penalties) whose ids change under bf16: %d of %d", changed, total)
		})
	}
}

// greedyChanges runs the fixture's generation cases on m and counts those
// whose ids differ from the reference.
func greedyChanges(t *testing.T, g *golden, m *Model) (changed, total int) {
	base, err := generate.LoadConfig(fixtures.Path("opt-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Cases {
		if c.OutputIDs == nil {
			continue
		}
		r := runGenerationCase(t, g, m, c, base)
		for i, want := range r.want {
			total++
			if fmt.Sprint(r.got[i]) != fmt.Sprint(want) {
				changed++
				t.Logf("%s row %d (%v): bf16 %v, fixture %v", c.Name, i, c.GenerateKwargs, r.got[i], want)
			}
		}
	}
	return changed, total
}

func flat(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}
