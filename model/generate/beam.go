package generate

import (
	"fmt"
	"math"
	"slices"
)

// beamPenalty is the -1e9 Hugging Face adds to scores to rule candidates out.
const beamPenalty = float32(-1e9)

// hypothesis is a beam: its generated tokens and its score.
type hypothesis struct {
	tokens []int
	score  float32
}

// candidate is one of the top-K continuations of a step.
type candidate struct {
	hypothesis
	parent int  // the running beam it extends
	ends   bool // it hits a stopping criterion (EOS or maximum length)
}

// beamItem is the beam search state of one input row.
type beamItem struct {
	prompt      []int
	lim         limits
	running     []hypothesis
	rows        []int // the Decoder row of each running beam
	slots       []hypothesis
	finished    []bool // whether each slot holds a finished hypothesis
	unsatisfied bool   // the early-stop heuristic still allows improvement
	done        bool   // no hypothesis can enter the slots any more
}

// beamSearch runs Hugging Face's _beam_search (beam sampling with do_sample).
func (r *runner) beamSearch(first [][]float32, prompts [][]int, lims []limits) ([][][]int, error) {
	nb := r.s.numBeams
	items := make([]*beamItem, len(prompts))
	for b := range items {
		it := &beamItem{prompt: prompts[b], lim: lims[b], unsatisfied: true,
			running: make([]hypothesis, nb), rows: make([]int, nb),
			slots: make([]hypothesis, nb), finished: make([]bool, nb)}
		for j := range nb {
			it.rows[j] = b // after the prefill the Decoder holds one row per input
			it.slots[j].score = beamPenalty
			if j > 0 {
				it.running[j].score = beamPenalty
			}
		}
		items[b] = it
	}
	r.lastRows = len(prompts)
	logits := first
	accumulated := make([]float32, nb*r.vocab)
	ids := make([]int, 0)
	for {
		for _, it := range items {
			if it.done {
				continue
			}
			for j, beam := range it.running {
				row := accumulated[j*r.vocab : (j+1)*r.vocab]
				logSoftmax(row, logits[it.rows[j]])
				ids = append(append(ids[:0], it.prompt...), beam.tokens...)
				r.process(row, ids, it.lim, r.minTokensToKeep())
				for v := range row {
					row[v] += beam.score
				}
			}
			candidates, err := r.topContinuations(it, accumulated)
			if err != nil {
				return nil, err
			}
			it.advance(candidates, r.s)
		}
		var src, tokens []int
		for _, it := range items {
			if it.done {
				continue
			}
			for j, beam := range it.running {
				src = append(src, it.rows[j])
				tokens = append(tokens, beam.tokens[len(beam.tokens)-1])
				it.rows[j] = len(src) - 1
			}
		}
		if len(src) == 0 {
			break
		}
		var err error
		if logits, err = r.step(src, tokens); err != nil {
			return nil, err
		}
	}
	out := make([][][]int, len(items))
	for b, it := range items {
		out[b] = make([][]int, r.s.numReturn)
		for k := range out[b] {
			out[b][k] = it.slots[k].tokens
		}
	}
	return out, nil
}

// minTokensToKeep is what the sampling warpers keep at least in beam search:
// one more than the number of EOS tokens (two without EOS).
func (r *runner) minTokensToKeep() int {
	if len(r.s.eos) == 0 {
		return 2
	}
	return len(r.s.eos) + 1
}

// beamsToKeep is K, the continuations kept per step: enough that num_beams
// remain even when the best ones all end with an EOS.
func (r *runner) beamsToKeep() int {
	return max(2, 1+len(r.s.eos)) * r.s.numBeams
}

// topContinuations picks the K best of the num_beams*vocab accumulated scores
// (equal scores: lower flat index first, as torch.topk), or with do_sample
// draws K without replacement from their softmax (torch.multinomial), and
// marks those that end.
func (r *runner) topContinuations(it *beamItem, accumulated []float32) ([]candidate, error) {
	k := r.beamsToKeep()
	var picked []int
	if r.s.doSample {
		weights := softmax64(accumulated)
		for range k {
			idx, err := r.pick(weights)
			if err != nil {
				return nil, fmt.Errorf("generate: beam sampling: %w", err)
			}
			weights[idx] = 0
			picked = append(picked, idx)
		}
	} else {
		picked = topIndices(accumulated, k)
	}
	candidates := make([]candidate, len(picked))
	for c, idx := range picked {
		parent, token := idx/r.vocab, idx%r.vocab
		tokens := append(slices.Clip(slices.Clone(it.running[parent].tokens)), token)
		candidates[c] = candidate{
			hypothesis: hypothesis{tokens: tokens, score: accumulated[idx]},
			parent:     parent,
			ends:       r.isEOS(token) || len(it.prompt)+len(tokens) >= it.lim.maxTotal,
		}
	}
	return candidates, nil
}

// topIndices returns the indices of the k largest values, best first; equal
// values keep the lower index first and NaN counts as the largest.
func topIndices(values []float32, k int) []int {
	k = min(k, len(values))
	better := func(a, b int) bool {
		va, vb := values[a], values[b]
		if va != va || vb != vb {
			return va != va && (vb == vb || a < b)
		}
		return va > vb || (va == vb && a < b)
	}
	top := make([]int, 0, k)
	for i := range values {
		if len(top) == k && !better(i, top[k-1]) {
			continue
		}
		pos := len(top)
		for pos > 0 && better(i, top[pos-1]) {
			pos--
		}
		if len(top) < k {
			top = append(top, 0)
		}
		copy(top[pos+1:], top[pos:len(top)-1])
		top[pos] = i
	}
	return top
}

// advance applies one step's candidates to the item: the next running beams,
// the finished slots and the stopping state, in Hugging Face's order.
func (it *beamItem) advance(candidates []candidate, s settings) {
	nb := len(it.running)

	// Next running beams: the best num_beams after ruling out the ended ones.
	adjusted := make([]float32, len(candidates))
	for c, cand := range candidates {
		adjusted[c] = cand.score
		if cand.ends {
			adjusted[c] += beamPenalty
		}
	}
	order := topIndices(adjusted, nb)
	running := make([]hypothesis, nb)
	rows := make([]int, nb)
	for j, c := range order {
		running[j] = hypothesis{tokens: candidates[c].tokens, score: adjusted[c]}
		rows[j] = it.rows[candidates[c].parent]
	}

	// Finished slots: ended candidates among the first num_beams compete with
	// the slots, scored by their length-penalised score.
	allFinished := !slices.Contains(it.finished, false)
	genLen := len(candidates[0].tokens)
	denominator := float32(math.Pow(float64(genLen), s.lengthPenalty))
	merged := make([]float32, 0, nb+len(candidates))
	for _, slot := range it.slots {
		merged = append(merged, slot.score)
	}
	for c, cand := range candidates {
		v := cand.score / denominator
		if allFinished && s.earlyStopping == EarlyStopWhenFull {
			v += beamPenalty
		}
		if !it.unsatisfied {
			v += beamPenalty
		}
		if !cand.ends || c >= nb {
			v += beamPenalty
		}
		merged = append(merged, v)
	}
	slots := make([]hypothesis, nb)
	finished := make([]bool, nb)
	for j, m := range topIndices(merged, nb) {
		if m < nb {
			slots[j], finished[j] = it.slots[m], it.finished[m]
			continue
		}
		c := m - nb
		slots[j] = hypothesis{tokens: candidates[c].tokens, score: merged[m]}
		finished[j] = candidates[c].ends && c < nb
	}
	it.running, it.rows, it.slots, it.finished = running, rows, slots, finished

	// Early-stop heuristic: can the best running beam still beat a finished one?
	hypothetical := genLen
	if s.earlyStopping == EarlyStopNever && s.lengthPenalty > 0 {
		hypothetical = it.lim.maxTotal - len(it.prompt)
	}
	best := it.running[0].score / float32(math.Pow(float64(hypothetical), s.lengthPenalty))
	worst := it.slots[0].score
	for _, slot := range it.slots {
		worst = min(worst, slot.score)
	}
	improvable := false
	for _, f := range it.finished {
		w := beamPenalty
		if f {
			w = worst
		}
		improvable = improvable || best > w
	}
	it.unsatisfied = it.unsatisfied && improvable

	allEnd := true
	for _, cand := range candidates {
		allEnd = allEnd && cand.ends
	}
	allFinished = !slices.Contains(it.finished, false)
	it.done = !it.unsatisfied || (allFinished && s.earlyStopping == EarlyStopWhenFull) || allEnd
}
