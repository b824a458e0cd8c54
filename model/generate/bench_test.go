package generate

import (
	"context"
	"testing"
)

// tableDecoder returns precomputed logits rows (cycling), so a benchmark
// measures the search itself rather than a model.
type tableDecoder struct {
	table [][]float32
	rows  int
	calls int
}

func (d *tableDecoder) Step(_ context.Context, tokens []int) ([][]float32, error) {
	out := make([][]float32, len(tokens))
	for i := range out {
		out[i] = d.table[(d.calls+i)%len(d.table)]
	}
	d.calls++
	return out, nil
}

func (d *tableDecoder) Select(src []int) error {
	d.rows = len(src)
	return nil
}

// benchTable builds 16 rows of OPT-sized logits from the hash model.
func benchTable(vocab int) [][]float32 {
	model := hashLogits(vocab, 1<<20)
	table := make([][]float32, 16)
	for i := range table {
		table[i] = model([]int{i})
	}
	return table
}

func benchmarkGenerate(b *testing.B, cfg Config, batch int) {
	const vocab = 50272 // OPT's vocabulary
	table := benchTable(vocab)
	prompts := make([][]int, batch)
	first := make([][]float32, batch)
	for i := range prompts {
		prompts[i] = make([]int, 40)
		first[i] = table[i%len(table)]
	}
	b.ResetTimer()
	for b.Loop() {
		d := &tableDecoder{table: table, rows: batch}
		if _, err := Generate(context.Background(), d, first, prompts, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGreedy: 8 rows, 20 new tokens, repetition penalty and no-repeat bigrams.
func BenchmarkGreedy(b *testing.B) {
	benchmarkGenerate(b, Config{MaxNewTokens: Int(20), RepetitionPenalty: Float(1.5), NoRepeatNGramSize: Int(2)}, 8)
}

// BenchmarkBeam: 3 inputs, 3 beams, 10 new tokens (the golden c4 shape at OPT's vocabulary).
func BenchmarkBeam(b *testing.B) {
	benchmarkGenerate(b, Config{MaxNewTokens: Int(10), NumBeams: Int(3), NumReturnSequences: Int(2),
		EarlyStopping: EarlyStop(EarlyStopWhenFull), EOSTokenID: TokenIDs{2}}, 3)
}

// BenchmarkSample: 8 rows, 20 new tokens with temperature, top-k 50 and top-p 0.9.
func BenchmarkSample(b *testing.B) {
	benchmarkGenerate(b, Config{MaxNewTokens: Int(20), DoSample: Bool(true), Temperature: Float(0.8),
		TopP: Float(0.9), Seed: Uint64(1)}, 8)
}
