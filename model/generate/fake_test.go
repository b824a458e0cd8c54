package generate

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
)

// fakeDecoder is a deterministic stand-in for a model: the logits of a row are
// a function of the row's whole history. It records how it was driven.
type fakeDecoder struct {
	logits      func(history []int) []float32
	rows        [][]int
	steps       int // Step calls
	rowsStepped int // rows fed over all Step calls
	selects     [][]int
}

// newFake returns the decoder after the prefill of prompts and the prefill's
// last-position logits.
func newFake(logits func([]int) []float32, prompts [][]int) (*fakeDecoder, [][]float32) {
	d := &fakeDecoder{logits: logits}
	first := make([][]float32, len(prompts))
	for i, p := range prompts {
		d.rows = append(d.rows, slices.Clone(p))
		first[i] = logits(p)
	}
	return d, first
}

func (d *fakeDecoder) Step(_ context.Context, tokens []int) ([][]float32, error) {
	if len(tokens) != len(d.rows) {
		return nil, fmt.Errorf("fake: %d tokens for %d rows", len(tokens), len(d.rows))
	}
	d.steps++
	d.rowsStepped += len(tokens)
	out := make([][]float32, len(tokens))
	for i, t := range tokens {
		d.rows[i] = append(d.rows[i], t)
		out[i] = d.logits(d.rows[i])
	}
	return out, nil
}

func (d *fakeDecoder) Select(src []int) error {
	d.selects = append(d.selects, slices.Clone(src))
	rows := make([][]int, len(src))
	for i, s := range src {
		if s < 0 || s >= len(d.rows) {
			return fmt.Errorf("fake: select row %d of %d", s, len(d.rows))
		}
		rows[i] = slices.Clone(d.rows[s])
	}
	d.rows = rows
	return nil
}

// hashLogits returns logits in [0, 3) drawn from a hash of the history,
// quantised to `levels` values (few levels make ties common).
func hashLogits(vocab, levels int) func([]int) []float32 {
	return func(history []int) []float32 {
		h := fnv.New64a()
		for _, id := range history {
			fmt.Fprintf(h, "%d,", id)
		}
		x := h.Sum64()
		out := make([]float32, vocab)
		for v := range out {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			out[v] = float32(x%uint64(levels)) * 3 / float32(levels)
		}
		return out
	}
}

// tableLogits returns log-probabilities looked up by the generated part of the
// history (after promptLen ids), with fallback for anything not listed.
func tableLogits(promptLen int, table map[string][]float64, fallback []float64) func([]int) []float32 {
	return func(history []int) []float32 {
		probs, ok := table[fmt.Sprint(history[promptLen:])]
		if !ok {
			probs = fallback
		}
		out := make([]float32, len(probs))
		for i, p := range probs {
			out[i] = float32(math.Log(p))
		}
		return out
	}
}
