package ops

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"blipflow/model/blas"
	"blipflow/model/cuda"
	"blipflow/model/nn"
)

// gpuOrSkip opens device 0 in mode, skipping without a driver unless
// BLIPFLOW_REQUIRE_CUDA is set (tools/gpu_check.sh sets it).
func gpuOrSkip(t *testing.T, mode Mode) *Backend {
	t.Helper()
	if err := cuda.Available(); err != nil {
		if os.Getenv("BLIPFLOW_REQUIRE_CUDA") != "" {
			t.Fatalf("BLIPFLOW_REQUIRE_CUDA is set: %v", err)
		}
		t.Skipf("hardware: no GPU: %v", err)
	}
	b, err := Open(0, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestOpenWithoutDriverFailsInOneLine(t *testing.T) {
	if cuda.Available() == nil {
		t.Skip("hardware: this machine has a GPU")
	}
	_, err := Open(0, BF16)
	if err == nil || err.Error() != "no NVIDIA driver: libcuda.so.1 not found" {
		t.Fatalf("Open = %v", err)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": BF16, "bf16": BF16, "auto": BF16, "FP32": FP32} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMode("fp16"); err == nil || !strings.Contains(err.Error(), "fp16") {
		t.Errorf("fp16 accepted: %v", err)
	}
}

func TestQFormerAndVectorsStayFP32(t *testing.T) {
	for name, want := range map[string]bool{
		"qformer.encoder.layer.0.attention.attention.query.weight": true,
		"query_tokens": true,
		"vision_model.encoder.layers.0.mlp.fc1.weight":     false,
		"language_model.model.decoder.layers.0.fc1.weight": false,
		"language_model.shared.weight":                     false,
	} {
		w := &nn.Weight{Name: name, Shape: []int{4, 4}}
		if keepsFP32(w) != want {
			t.Errorf("%s: keepsFP32 = %v", name, !want)
		}
	}
	if !keepsFP32(&nn.Weight{Name: "vision_model.post_layernorm.weight", Shape: []int{4}}) {
		t.Error("a norm vector would be stored in bf16")
	}
}

func TestSizeClasses(t *testing.T) {
	for n, want := range map[uint64]uint64{1: 256, 256: 256, 257: 512, 1 << 20: 1 << 20, 1<<20 + 1: 2 << 20} {
		if got := sizeClass(n); got != want {
			t.Errorf("sizeClass(%d) = %d, want %d", n, got, want)
		}
	}
}

// run evaluates a one-op graph built by build with the given ops.
func run(t *testing.T, ops nn.Ops, build func(g *nn.Graph) *G.Node) []float32 {
	t.Helper()
	g := nn.NewGraph(ops)
	out := build(g)
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, _ := nn.Value(out)
	return v
}

func rnd(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

func maxRelErr(got, want []float32) float64 {
	var scale, worst float64
	for i := range want {
		scale = math.Max(scale, math.Abs(float64(want[i])))
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	return worst / scale
}

// TestOpsMatchCPU runs each op on the GPU and on the CPU: within 1e-5 of
// the largest value in fp32 mode, within bf16's rounding in bf16 mode.
func TestOpsMatchCPU(t *testing.T) {
	for mode, tol := range map[Mode]float64{FP32: 1e-5, BF16: 8.0 / 512} {
		t.Run(string(mode), func(t *testing.T) {
			b := gpuOrSkip(t, mode)
			gpu, cpu := &Ops{B: b}, nn.NewCPU(blas.Gonum{})
			r := rand.New(rand.NewPCG(1, 2))
			src := nn.NewRandomSource(3, 0.2)
			l := nn.NewLoader(src)
			lin := l.Linear("language_model.fc", 96, 160, true)
			ln := l.LayerNorm("ln", 96, 1e-5)
			rms := l.RMSNorm("rms", 96, 1e-6)
			table := l.Tensor("language_model.embed.weight", 50, 96)
			x := rnd(r, 7*96)
			cases := map[string]func(g *nn.Graph) *G.Node{
				"linear":     func(g *nn.Graph) *G.Node { return g.Ops.Linear(g.Input(x, 7, 96), lin) },
				"layer_norm": func(g *nn.Graph) *G.Node { return g.Ops.Norm(g.Input(x, 7, 96), ln) },
				"rms_norm":   func(g *nn.Graph) *G.Node { return g.Ops.Norm(g.Input(x, 7, 96), rms) },
				"embed": func(g *nn.Graph) *G.Node {
					return g.Ops.Embed(g.InputInts([]int{0, 49, 3, 3}, 2, 2), table)
				},
			}
			for _, a := range []nn.Activation{nn.GELU, nn.GELUTanh, nn.QuickGELU, nn.ReLU} {
				cases[string(a)] = func(g *nn.Graph) *G.Node { return g.Ops.Activate(g.Input(x, 7, 96), a) }
			}
			const B, H, D, Tq, Tk = 2, 3, 80, 5, 37
			q, k, v := rnd(r, B*Tq*H*D), rnd(r, B*Tk*H*D), rnd(r, B*Tk*H*D)
			mask := make([]float32, B*Tq*Tk)
			for i := range mask {
				if i%7 == 3 {
					mask[i] = -math.MaxFloat32
				}
			}
			bias := rnd(r, H*Tq*Tk)
			spec := nn.AttentionSpec{Heads: H, HeadDim: D, Scale: 0.1}
			cases["attention"] = func(g *nn.Graph) *G.Node {
				return g.Ops.Attention(g.Input(q, B, Tq, H*D), g.Input(k, B, Tk, H*D), g.Input(v, B, Tk, H*D),
					g.Input(mask, B, Tq, Tk), g.Input(bias, H, Tq, Tk), spec)
			}
			cases["cached_attention"] = func(g *nn.Graph) *G.Node {
				cache := g.Ops.NewKVCache(1, B, B, H*D, Tq+1)
				at, err := cache.Reserve(Tq)
				if err != nil {
					t.Fatal(err)
				}
				pos := g.InputInts(at, B)
				kw := g.Ops.KVWrite(g.Input(k[:B*Tq*H*D], B, Tq, H*D), pos, cache, 0, false)
				vw := g.Ops.KVWrite(g.Input(v[:B*Tq*H*D], B, Tq, H*D), pos, cache, 0, true)
				return g.Ops.CachedAttention(g.Input(q, B, Tq, H*D), kw, vw, g.Input(mask, B, Tq, Tk), g.Input(bias, H, Tq, Tk), cache, 0, spec)
			}
			for name, build := range cases {
				tolerance := tol
				if !strings.HasPrefix(name, "linear") && !strings.HasPrefix(name, "embed") {
					tolerance = 1e-5 // no bf16 product involved
				}
				got, want := run(t, gpu, build), run(t, cpu, build)
				if e := maxRelErr(got, want); e > tolerance || math.IsNaN(e) {
					t.Errorf("%s: relative error %.3g above %.3g", name, e, tolerance)
				} else {
					t.Logf("%s: relative error %.3g", name, e)
				}
			}
		})
	}
}

// TestGraphReplay captures an add into a graph, then changes its inputs in
// place and replays it.
func TestGraphReplay(t *testing.T) {
	b := gpuOrSkip(t, FP32)
	graphs := b.NewGraphs()
	defer graphs.Close()
	err := b.Ctx.Do(func() error {
		x, err := b.Upload([]float32{1, 2, 3}, 3)
		if err != nil {
			return err
		}
		y, err := b.Upload([]float32{10, 20, 30}, 3)
		if err != nil {
			return err
		}
		var out Tensor
		step := func() error {
			var err error
			out, err = b.Binary("add", x, y)
			return err
		}
		key := GraphKey{Batch: 3, Capacity: 1}
		if err := graphs.Run(key, step); err != nil {
			return err
		}
		first, err := b.Download(out)
		if err != nil {
			return err
		}
		if err := b.upload(x.Buf.Ptr, f32bytes([]float32{5, 5, 5})); err != nil {
			return err
		}
		if err := graphs.Run(key, func() error { t.Error("recaptured"); return nil }); err != nil {
			return err
		}
		if err := b.Sync(); err != nil {
			return err
		}
		second, err := b.Download(out)
		if err != nil {
			return err
		}
		if !slices.Equal(first, []float32{11, 22, 33}) || !slices.Equal(second, []float32{15, 25, 35}) {
			t.Errorf("captured %v, replayed %v", first, second)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if graphs.Captures != 1 || graphs.Replays != 1 {
		t.Fatalf("captures %d replays %d", graphs.Captures, graphs.Replays)
	}
}

func f32bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, f := range v {
		u := math.Float32bits(f)
		out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return out
}

// TestSamplingKernels checks argmax and top-k on the device against the
// host.
func TestSamplingKernels(t *testing.T) {
	b := gpuOrSkip(t, FP32)
	r := rand.New(rand.NewPCG(4, 5))
	const rows, vocab = 3, 50272
	scores := rnd(r, rows*vocab)
	scores[vocab+77] = 5 // row 1's maximum
	err := b.Ctx.Do(func() error {
		s, err := b.Upload(scores, rows, vocab)
		if err != nil {
			return err
		}
		out, err := b.Upload(make([]float32, rows), rows)
		if err != nil {
			return err
		}
		if err := b.Argmax(s, out, rows, vocab); err != nil {
			return err
		}
		if err := b.Warp(s, rows, vocab, 1, 10, 1, 1); err != nil {
			return err
		}
		ids, err := b.Download(out)
		if err != nil {
			return err
		}
		warped, err := b.Download(s)
		if err != nil {
			return err
		}
		for row := 0; row < rows; row++ {
			want := 0
			for i, v := range scores[row*vocab : (row+1)*vocab] {
				if v > scores[row*vocab+want] {
					want = i
				}
			}
			if got := int(math.Float32bits(ids[row])); got != want {
				t.Errorf("row %d: argmax %d, want %d", row, got, want)
			}
			kept := 0
			for _, v := range warped[row*vocab : (row+1)*vocab] {
				if !math.IsInf(float64(v), -1) {
					kept++
				}
			}
			if kept != 10 {
				t.Errorf("row %d: top-10 kept %d tokens", row, kept)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
