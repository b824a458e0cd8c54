package blip2

import (
	"context"
	"fmt"
	"os"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/blas"
	"blipflow/model/config"
	"blipflow/model/generate"
	"blipflow/model/nn"
)

// BenchmarkTinyCaption times captioning a batch of 8 images end to end
// (vision, Q-Former, prefill, 12 greedy steps) with the tiny OPT
// checkpoint: the framework's overhead, since its math is negligible.
func BenchmarkTinyCaption(b *testing.B) {
	bl, _, _ := blas.Default()
	m := loadModel(b, "opt-tiny", bl)
	const n = 8
	pixels := nn.NewRandomSource(1, 1).Shaped([]int{n, 3, 224, 224})
	row := append(repeat(*m.Config.ImageTokenIndex, m.Config.NumQueryTokens), 2)
	ids, mask := make([][]int, n), make([][]int, n)
	for i := range ids {
		ids[i], mask[i] = row, onesInt(len(row))
	}
	var cfg generate.Config
	cfg.Set("max_new_tokens", "12")
	cfg.Set("eos_token_id", "-1") // never stop early: every run does the same work
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		img, err := m.EncodeImages(context.Background(), pixels, n)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Generate(context.Background(), img, ids, mask, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkRealShape times each stage of a model of a released checkpoint's
// shape with random weights, reporting GFLOP/s per stage. It needs the
// weights' memory (15 GB for blip2-opt-2.7b), so it runs only when
// BLIPFLOW_BENCH_SHAPE names the shape; `worker bench` prints the same as a
// table.
func BenchmarkRealShape(b *testing.B) {
	shape := os.Getenv("BLIPFLOW_BENCH_SHAPE")
	if shape == "" {
		b.Skip("set BLIPFLOW_BENCH_SHAPE=blip2-opt-2.7b (needs ~16 GB of memory)")
	}
	cfg, err := Shape(shape)
	if err != nil {
		b.Fatal(err)
	}
	bl, _, _ := blas.Default()
	src := nn.NewRandomSource(1, 0.02)
	src.Absent = map[string]bool{"language_model.lm_head.weight": true}
	m, err := New(cfg, src, nn.NewCPU(bl))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timings, err := Measure(context.Background(), m, BenchOptions{Repeats: 1})
		if err != nil {
			b.Fatal(err)
		}
		if i == b.N-1 {
			for _, t := range timings {
				b.Logf("%-24s batch %2d  %8.1f ms  %6.1f GFLOP/s", t.Stage, t.Batch, t.Seconds*1e3, t.GFLOPS())
			}
		}
	}
}

// BenchmarkDecodeStepTiny times one decode step of a 32-layer OPT at the
// tiny checkpoint's widths, where the math is negligible: what is left is
// the framework's cost per step (graph building and compiling before steps
// reused a compiled graph, op dispatch, the KV cache).
func BenchmarkDecodeStepTiny(b *testing.B) {
	for _, rows := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch%d", rows), func(b *testing.B) {
			cfg, err := config.Load(fixtures.Path("opt-tiny", "model"))
			if err != nil {
				b.Fatal(err)
			}
			cfg.Text.NumHiddenLayers = 32
			bl, _, _ := blas.Default()
			m, err := New(cfg, nn.NewRandomSource(1, 0.02), nn.NewCPU(bl))
			if err != nil {
				b.Fatal(err)
			}
			d, err := m.LM.(*OPT).emptyDecoder(m, rows, 42)
			if err != nil {
				b.Fatal(err)
			}
			tokens := make([]int, rows)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := d.Step(context.Background(), tokens); err != nil {
					b.Fatal(err)
				}
				d.rewind(1)
			}
		})
	}
}

// TestMeasureOpTimes checks that Measure breaks each stage down by kind of
// op when asked: every stage has its ops, the products and norms among
// them, each with a time, and nothing is left over after the last stage.
func TestMeasureOpTimes(t *testing.T) {
	m := loadModel(t, "opt-tiny", blas.Gonum{})
	times := nn.NewOpTimes()
	m.Ops.(*nn.CPU).Times = times
	timings, err := Measure(context.Background(), m, BenchOptions{DecodeBatch: []int{1, 2}, Repeats: 2, OpTimes: times})
	if err != nil {
		t.Fatal(err)
	}
	if len(timings) != 5 {
		t.Fatalf("%d stages, want vision, q-former, prefill and 2 decode steps", len(timings))
	}
	for _, s := range timings {
		kinds := map[string]bool{}
		for _, o := range s.Ops {
			kinds[o.Kind] = true
			if o.Time <= 0 {
				t.Errorf("%s: op %s took %v", s.Stage, o.Kind, o.Time)
			}
		}
		if !kinds["linear"] || !kinds["norm"] {
			t.Errorf("%s (batch %d): op kinds %v, want linear and norm among them", s.Stage, s.Batch, kinds)
		}
	}
	if len(times.Take()) != 0 {
		t.Error("Measure left op times behind after the last stage")
	}
}
