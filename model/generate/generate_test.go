package generate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func TestGreedyDropsFinishedRows(t *testing.T) {
	// Row 0 ("stop" prompt) emits EOS (0) as its second token; row 1 never does.
	const eos = 0
	prompts := [][]int{{5, 7}, {5, 6}}
	model := func(history []int) []float32 {
		logits := make([]float32, 8)
		gen := len(history) - 2
		switch {
		case history[1] == 7 && gen == 1:
			logits[eos] = 9
		case history[1] == 7:
			logits[3] = 9
		default:
			logits[4] = 9
		}
		return logits
	}
	d, first := newFake(model, prompts)
	cfg := Config{MaxNewTokens: Int(5), EOSTokenID: TokenIDs{eos}, PadTokenID: Int(1)}
	got, err := Generate(context.Background(), d, first, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := [][][]int{{{3, eos}}, {{4, 4, 4, 4, 4}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Step 1 feeds both rows; then row 0 is dropped: 2 + 1 + 1 + 1 rows.
	if d.steps != 4 || d.rowsStepped != 5 {
		t.Errorf("decoder ran %d steps over %d rows, want 4 steps over 5 rows", d.steps, d.rowsStepped)
	}
	if len(d.selects) != 1 || !slices.Equal(d.selects[0], []int{1}) {
		t.Errorf("selects %v, want one [1]", d.selects)
	}
	if padded := PadLikeHF(got, cfg.FillToken()); !reflect.DeepEqual(padded, refGreedy(model, prompts, cfg)) {
		t.Errorf("padded %v, reference %v", padded, refGreedy(model, prompts, cfg))
	}
}

// TestBeamHandComputed follows a case worked out by hand (see comments):
// vocab {0: EOS, 1: a, 2: b}, 2 beams, 2 returned, length penalty 1.
func TestBeamHandComputed(t *testing.T) {
	table := map[string][]float64{
		"[]":    {0.1, 0.6, 0.3},   // step 1: a -0.511, b -1.204, EOS -2.303 is 3rd of K=4: ignored
		"[1]":   {0.5, 0.25, 0.25}, // a,EOS -1.204 finishes (score -0.602); a,a ties a,b: a,a kept
		"[2]":   {0.2, 0.2, 0.6},   // b,b -1.715 runs first
		"[2 2]": {0.5, 0.4, 0.1},   // step 3 (max length): b,b,EOS -2.408/3 = -0.803 finishes
		"[1 1]": {0.3, 0.3, 0.4},
	}
	prompts := [][]int{{2}}
	model := tableLogits(1, table, []float64{0.2, 0.4, 0.4})
	for _, stop := range []EarlyStopping{EarlyStopHeuristic, EarlyStopWhenFull, EarlyStopNever} {
		t.Run(string(stop), func(t *testing.T) {
			d, first := newFake(model, prompts)
			cfg := Config{MaxNewTokens: Int(3), NumBeams: Int(2), NumReturnSequences: Int(2),
				EarlyStopping: EarlyStop(stop), EOSTokenID: TokenIDs{0}, PadTokenID: Int(0)}
			got, err := Generate(context.Background(), d, first, prompts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := [][][]int{{{1, 0}, {2, 2, 0}}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if d.steps != 2 || d.rowsStepped != 4 {
				t.Errorf("decoder ran %d steps over %d rows, want 2 over 4", d.steps, d.rowsStepped)
			}
		})
	}
}

// TestBeamEarlyStopWhenFull: once num_beams hypotheses finished, early_stopping
// true ends the item and drops its rows even though max length is far.
func TestBeamEarlyStopWhenFull(t *testing.T) {
	table := map[string][]float64{
		"[]":  {0.1, 0.5, 0.4},
		"[1]": {0.9, 0.05, 0.05},
		"[2]": {0.9, 0.05, 0.05},
	}
	prompts := [][]int{{1, 2}}
	model := tableLogits(2, table, []float64{0.3, 0.35, 0.35})
	d, first := newFake(model, prompts)
	cfg := Config{MaxNewTokens: Int(50), NumBeams: Int(2), NumReturnSequences: Int(2),
		EarlyStopping: EarlyStop(EarlyStopWhenFull), EOSTokenID: TokenIDs{0}}
	got, err := Generate(context.Background(), d, first, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := [][][]int{{{1, 0}, {2, 0}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if d.steps != 1 {
		t.Errorf("decoder stepped %d times, want 1", d.steps)
	}
}

// TestAgainstReference compares Generate (which drops rows) with the literal
// transcription of Hugging Face's loops on many random configurations of a
// model whose quantised logits make ties common.
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 400 {
		vocab := 5 + rng.IntN(6)
		model := hashLogits(vocab, 3+rng.IntN(5))
		batch := 1 + rng.IntN(3)
		promptLen := 1 + rng.IntN(4)
		prompts := make([][]int, batch)
		for b := range prompts {
			for range promptLen {
				prompts[b] = append(prompts[b], rng.IntN(vocab))
			}
		}
		cfg := Config{MaxNewTokens: Int(1 + rng.IntN(8)), EOSTokenID: TokenIDs{rng.IntN(vocab)}}
		if rng.IntN(3) == 0 {
			cfg.EOSTokenID = append(cfg.EOSTokenID, rng.IntN(vocab))
		}
		if rng.IntN(2) == 0 {
			cfg.PadTokenID = Int(rng.IntN(vocab))
		}
		if rng.IntN(2) == 0 {
			cfg.RepetitionPenalty = Float(1.5)
		}
		if rng.IntN(2) == 0 {
			cfg.NoRepeatNGramSize = Int(1 + rng.IntN(3))
		}
		if rng.IntN(2) == 0 {
			cfg.MinNewTokens = Int(rng.IntN(5))
		}
		beams := rng.IntN(3) > 0
		if beams {
			nb := 2 + rng.IntN(3)
			cfg.NumBeams = Int(nb)
			cfg.NumReturnSequences = Int(1 + rng.IntN(nb))
			cfg.LengthPenalty = Float([]float64{1, 0.5, 2, -1, 0}[rng.IntN(5)])
			cfg.EarlyStopping = EarlyStop([]EarlyStopping{EarlyStopHeuristic, EarlyStopWhenFull, EarlyStopNever}[rng.IntN(3)])
		}
		name := fmt.Sprintf("trial%d", trial)
		d, first := newFake(model, prompts)
		got, err := Generate(context.Background(), d, first, prompts, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var want [][]int
		if beams {
			want = refBeam(model, prompts, cfg)
		} else {
			want = refGreedy(model, prompts, cfg)
		}
		if padded := PadLikeHF(got, cfg.FillToken()); !reflect.DeepEqual(padded, want) {
			t.Fatalf("%s: config %+v prompts %v\ngot  %v\nwant %v", name, describe(cfg), prompts, padded, want)
		}
	}
}

func describe(c Config) string {
	data, _ := json.Marshal(c)
	return string(data)
}

func TestMinNewTokensMasksEOS(t *testing.T) {
	// The model always prefers EOS; min_new_tokens=3 delays it to the 4th token.
	model := func(history []int) []float32 { return []float32{5, 1, 2} }
	prompts := [][]int{{1}}
	for _, beams := range []int{1, 2} {
		d, first := newFake(model, prompts)
		cfg := Config{MaxNewTokens: Int(10), MinNewTokens: Int(3), NumBeams: Int(beams), EOSTokenID: TokenIDs{0}}
		got, err := Generate(context.Background(), d, first, prompts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{2, 2, 2, 0}; !slices.Equal(got[0][0], want) {
			t.Errorf("num_beams=%d: got %v, want %v", beams, got[0][0], want)
		}
	}
}

func TestMaxLengthCountsPrompt(t *testing.T) {
	model := func(history []int) []float32 { return []float32{0, 1, 2} }
	prompts := [][]int{{1, 1, 1}}
	d, first := newFake(model, prompts)
	got, err := Generate(context.Background(), d, first, prompts, Config{MaxLength: Int(5)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0][0], []int{2, 2}) {
		t.Errorf("got %v, want two new tokens", got[0][0])
	}
	d, first = newFake(model, prompts)
	got, err = Generate(context.Background(), d, first, prompts, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0][0]) != defaultNewTokens {
		t.Errorf("default generated %d tokens, want %d", len(got[0][0]), defaultNewTokens)
	}
	if _, err := Generate(context.Background(), d, first, prompts, Config{MaxLength: Int(3)}); err == nil {
		t.Error("max_length equal to the prompt length: want an error")
	}
}

func TestSamplingIsRepeatable(t *testing.T) {
	model := hashLogits(40, 1<<24)
	prompts := [][]int{{1, 2}, {3, 4}}
	cfg := Config{DoSample: Bool(true), MaxNewTokens: Int(12), NumReturnSequences: Int(3),
		Temperature: Float(0.9), TopP: Float(0.95), Seed: Uint64(7)}
	run := func(c Config) [][][]int {
		d, first := newFake(model, prompts)
		out, err := Generate(context.Background(), d, first, prompts, c)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := run(cfg), run(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different output:\n%v\n%v", a, b)
	}
	if len(a) != 2 || len(a[0]) != 3 {
		t.Fatalf("shape %d x %d, want 2 x 3", len(a), len(a[0]))
	}
	if reflect.DeepEqual(a, run(cfg.Merge(Config{Seed: Uint64(8)}))) {
		t.Error("seeds 7 and 8 gave the same 72 sampled tokens")
	}
}

func TestSamplingTopK1IsGreedy(t *testing.T) {
	model := hashLogits(30, 1<<24)
	prompts := [][]int{{1, 2}, {3, 4}}
	base := Config{MaxNewTokens: Int(10), EOSTokenID: TokenIDs{0}, RepetitionPenalty: Float(1.3)}
	d, first := newFake(model, prompts)
	greedy, err := Generate(context.Background(), d, first, prompts, base)
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(5) {
		d, first := newFake(model, prompts)
		sampled, err := Generate(context.Background(), d, first, prompts, base.Merge(Config{DoSample: Bool(true), TopK: Int(1), Seed: Uint64(seed)}))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sampled, greedy) {
			t.Fatalf("seed %d: top_k=1 sampling %v differs from greedy %v", seed, sampled, greedy)
		}
	}
}

func TestBeamSamplingIsRepeatable(t *testing.T) {
	model := hashLogits(20, 1<<24)
	prompts := [][]int{{1}, {2}}
	cfg := Config{DoSample: Bool(true), NumBeams: Int(3), NumReturnSequences: Int(2),
		MaxNewTokens: Int(6), EOSTokenID: TokenIDs{0}, Seed: Uint64(3)}
	var outs [2][][][]int
	for i := range outs {
		d, first := newFake(model, prompts)
		out, err := Generate(context.Background(), d, first, prompts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = out
	}
	if !reflect.DeepEqual(outs[0], outs[1]) {
		t.Fatalf("same seed, different beams:\n%v\n%v", outs[0], outs[1])
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	model := func([]int) []float32 { return []float32{0, 1} }
	tests := []struct {
		name    string
		prompts [][]int
		cfg     Config
	}{
		{"token outside vocabulary", [][]int{{5}}, Config{}},
		{"empty prompt", [][]int{{}}, Config{}},
		{"greedy with several sequences", [][]int{{1}}, Config{NumReturnSequences: Int(2)}},
		{"more sequences than beams", [][]int{{1}}, Config{NumBeams: Int(2), NumReturnSequences: Int(3)}},
		{"zero temperature", [][]int{{1}}, Config{DoSample: Bool(true), Temperature: Float(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := [][]float32{model(nil)}
			d := &fakeDecoder{logits: model, rows: tt.prompts}
			if _, err := Generate(context.Background(), d, first, tt.prompts, tt.cfg); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestGenerateStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := &cancelDecoder{}
	first := [][]float32{{0, 1, 0}}
	max := 4
	_, err := Generate(ctx, d, first, [][]int{{0}}, Config{MaxNewTokens: &max})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate = %v, want context.Canceled", err)
	}
	if d.steps != 0 {
		t.Errorf("%d steps after cancellation", d.steps)
	}
}

// cancelDecoder counts steps and returns uniform logits.
type cancelDecoder struct{ steps int }

func (d *cancelDecoder) Step(_ context.Context, tokens []int) ([][]float32, error) {
	d.steps++
	out := make([][]float32, len(tokens))
	for i := range out {
		out[i] = make([]float32, 3)
	}
	return out, nil
}

func (d *cancelDecoder) Select(src []int) error { return nil }
