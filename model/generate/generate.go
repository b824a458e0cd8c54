package generate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// pcgStream is the fixed second word of the PCG state; Config.Seed is the first.
const pcgStream = 0x626c6970666c6f77 // "blipflow"

// Generate continues each prompt row after the model's prefill and returns,
// per input row, NumReturnSequences sequences of new token ids, as Hugging
// Face's generate would return them with the prompt stripped.
//
// first holds the prefill's last-position logits per row (each of the vocab
// length), prompts the ids of each row (see the package documentation), and d
// the model, holding one cache row per input row. A sequence that ended with
// an EOS token includes it; nothing follows it (PadLikeHF pads like Hugging
// Face). Beam search returns the best finished hypotheses first. A
// cancelled ctx stops generation before the next step (or within it, as the
// Decoder allows) with ctx's error.
func Generate(ctx context.Context, d Decoder, first [][]float32, prompts [][]int, cfg Config) ([][][]int, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if len(first) == 0 {
		return nil, errNoRows
	}
	if len(first) != len(prompts) {
		return nil, fmt.Errorf("generate: %d logits rows but %d prompts", len(first), len(prompts))
	}
	vocab := len(first[0])
	if vocab == 0 {
		return nil, fmt.Errorf("generate: empty logits row")
	}
	lims := make([]limits, len(prompts))
	for i, p := range prompts {
		if len(first[i]) != vocab {
			return nil, fmt.Errorf("generate: logits row %d has %d entries, row 0 has %d", i, len(first[i]), vocab)
		}
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
		for _, id := range p {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("generate: prompt %d holds token %d outside the vocabulary of %d", i, id, vocab)
			}
		}
		if lims[i], err = s.limitsFor(len(p)); err != nil {
			return nil, fmt.Errorf("generate: prompt %d: %w", i, err)
		}
	}
	run := &runner{ctx: ctx, d: d, s: s, vocab: vocab, seen: make([]bool, vocab),
		rng: rand.New(rand.NewPCG(s.seed, pcgStream))}
	if s.numBeams > 1 {
		return run.beamSearch(first, prompts, lims)
	}
	return run.sample(first, prompts, lims)
}

// runner holds the state shared by the search strategies of one call.
type runner struct {
	ctx   context.Context
	d     Decoder
	s     settings
	vocab int
	seen  []bool // scratch for the repetition penalty
	rng   *rand.Rand
	// lastRows is the number of rows the Decoder holds.
	lastRows int
}

// process applies the logits processors to one row's scores in Hugging Face's
// order; minKeep is the warpers' min_tokens_to_keep.
func (r *runner) process(scores []float32, ids []int, lim limits, minKeep int) {
	if r.s.repetition != 1 {
		repetitionPenalty(scores, ids, r.s.repetition, r.seen)
	}
	if r.s.noRepeatNGram > 0 {
		noRepeatNGram(scores, ids, r.s.noRepeatNGram)
	}
	if len(ids) < lim.minTotal {
		maskEOS(scores, r.s.eos)
	}
	if !r.s.doSample {
		return
	}
	if r.s.temperature != 1 {
		temperature(scores, r.s.temperature)
	}
	if r.s.topK != 0 {
		topK(scores, r.s.topK, minKeep)
	}
	if r.s.topP < 1 {
		topP(scores, r.s.topP, minKeep)
	}
}

func (r *runner) isEOS(id int) bool { return slices.Contains(r.s.eos, id) }

// step moves the Decoder to hold the rows listed in src (indices into the rows
// it holds now), feeds tokens and checks the logits it returns.
func (r *runner) step(src, tokens []int) ([][]float32, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	identity := true
	for i, j := range src {
		identity = identity && i == j
	}
	if !identity || r.lastRows != len(src) {
		if err := r.d.Select(src); err != nil {
			return nil, fmt.Errorf("generate: select rows: %w", err)
		}
	}
	logits, err := r.d.Step(r.ctx, tokens)
	if err != nil {
		return nil, fmt.Errorf("generate: step: %w", err)
	}
	if len(logits) != len(tokens) {
		return nil, fmt.Errorf("generate: step returned %d logits rows for %d tokens", len(logits), len(tokens))
	}
	for i, row := range logits {
		if len(row) != r.vocab {
			return nil, fmt.Errorf("generate: step logits row %d has %d entries, want %d", i, len(row), r.vocab)
		}
	}
	r.lastRows = len(src)
	return logits, nil
}

// sample runs greedy search, or multinomial sampling when do_sample is set
// (Hugging Face's _sample). Finished rows are dropped from the Decoder.
func (r *runner) sample(first [][]float32, prompts [][]int, lims []limits) ([][][]int, error) {
	n := len(prompts) * r.s.numReturn
	ids := make([][]int, n)
	rowOf := make([]int, n) // the Decoder row holding each sequence's state
	active := make([]int, n)
	for i := range n {
		input := i / r.s.numReturn
		ids[i] = slices.Clip(slices.Clone(prompts[input]))
		rowOf[i] = input
		active[i] = i
	}
	r.lastRows = len(prompts)
	scores := make([]float32, r.vocab)
	logitsOf := func(i int) []float32 { return first[rowOf[i]] }
	for {
		next := make([]int, 0, len(active))
		for _, i := range active {
			input := i / r.s.numReturn
			copy(scores, logitsOf(i))
			r.process(scores, ids[i], lims[input], 1)
			token, err := r.choose(scores)
			if err != nil {
				return nil, fmt.Errorf("generate: sequence %d: %w", i, err)
			}
			ids[i] = append(ids[i], token)
			if !r.isEOS(token) && len(ids[i]) < lims[input].maxTotal {
				next = append(next, i)
			}
		}
		if len(next) == 0 {
			break
		}
		src := make([]int, len(next))
		tokens := make([]int, len(next))
		for k, i := range next {
			src[k] = rowOf[i]
			tokens[k] = ids[i][len(ids[i])-1]
			rowOf[i] = k
		}
		logits, err := r.step(src, tokens)
		if err != nil {
			return nil, err
		}
		logitsOf = func(i int) []float32 { return logits[rowOf[i]] }
		active = next
	}
	out := make([][][]int, len(prompts))
	for input := range out {
		out[input] = make([][]int, r.s.numReturn)
		for k := range out[input] {
			i := input*r.s.numReturn + k
			out[input][k] = ids[i][len(prompts[input]):]
		}
	}
	return out, nil
}

// choose takes the best token, or with do_sample draws one with probability softmax(scores).
func (r *runner) choose(scores []float32) (int, error) {
	if !r.s.doSample {
		return argmax(scores), nil
	}
	return r.pick(softmax64(scores))
}

// pick draws an index with probability proportional to weights.
func (r *runner) pick(weights []float64) (int, error) {
	var total float64
	for _, w := range weights {
		total += w
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return 0, fmt.Errorf("no token has a positive probability")
	}
	u := r.rng.Float64() * total
	last := 0
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		last = i
		if u < w {
			return i, nil
		}
		u -= w
	}
	return last, nil
}

// PadLikeHF lays results out as Hugging Face's generate output without the
// prompt: one row per returned sequence (input-major), every row padded with
// fill to the longest (fill is Config.FillToken).
func PadLikeHF(results [][][]int, fill int) [][]int {
	longest := 0
	for _, seqs := range results {
		for _, seq := range seqs {
			longest = max(longest, len(seq))
		}
	}
	var rows [][]int
	for _, seqs := range results {
		for _, seq := range seqs {
			row := make([]int, longest)
			copy(row, seq)
			for i := len(seq); i < longest; i++ {
				row[i] = fill
			}
			rows = append(rows, row)
		}
	}
	return rows
}
