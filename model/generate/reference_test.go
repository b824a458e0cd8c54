package generate

import (
	"math"
	"slices"
)

// This file transcribes Hugging Face's _sample (greedy) and _beam_search
// literally: every row keeps running until the whole batch stops, finished
// greedy rows are fed pad tokens, and the output is the rectangular tensor
// without the prompt. Generate must agree with it while dropping rows.

// refGreedy returns Hugging Face's greedy output (new ids, padded).
func refGreedy(model func([]int) []float32, prompts [][]int, cfg Config) [][]int {
	s, err := cfg.resolve()
	if err != nil {
		panic(err)
	}
	r := &runner{s: s, vocab: len(model(prompts[0])), seen: make([]bool, len(model(prompts[0])))}
	promptLen := len(prompts[0])
	lim, err := s.limitsFor(promptLen)
	if err != nil {
		panic(err)
	}
	pad := cfg.FillToken()
	seqs := make([][]int, len(prompts))
	unfinished := make([]bool, len(prompts))
	for i, p := range prompts {
		seqs[i] = slices.Clone(p)
		unfinished[i] = true
	}
	for {
		for i := range seqs {
			scores := model(seqs[i])
			r.process(scores, seqs[i], lim, 1)
			token := argmax(scores)
			if len(s.eos) > 0 && !unfinished[i] {
				token = pad
			}
			seqs[i] = append(seqs[i], token)
			if slices.Contains(s.eos, token) || len(seqs[i]) >= lim.maxTotal {
				unfinished[i] = false
			}
		}
		if !slices.Contains(unfinished, true) {
			break
		}
	}
	out := make([][]int, len(seqs))
	for i := range seqs {
		out[i] = seqs[i][promptLen:]
	}
	return out
}

// refBeam returns Hugging Face's beam search output (new ids, cropped and padded).
func refBeam(model func([]int) []float32, prompts [][]int, cfg Config) [][]int {
	s, err := cfg.resolve()
	if err != nil {
		panic(err)
	}
	vocab := len(model(prompts[0]))
	r := &runner{s: s, vocab: vocab, seen: make([]bool, vocab)}
	batch, nb := len(prompts), s.numBeams
	k := max(2, 1+len(s.eos)) * nb
	promptLen := len(prompts[0])
	lim, err := s.limitsFor(promptLen)
	if err != nil {
		panic(err)
	}
	maxLength := lim.maxTotal
	const big = float32(-1e9)
	type hyp struct {
		seq   []int // prompt + generated
		score float32
	}
	running := make([][]hyp, batch)
	done := make([][]hyp, batch) // "sequences" and "beam_scores"
	fin := make([][]bool, batch)
	unsat := make([]bool, batch)
	for b := range batch {
		for j := range nb {
			score := float32(0)
			if j > 0 {
				score = big
			}
			running[b] = append(running[b], hyp{slices.Clone(prompts[b]), score})
			done[b] = append(done[b], hyp{slices.Clone(prompts[b]), big})
			fin[b] = append(fin[b], false)
		}
		unsat[b] = true
	}
	curLen := promptLen
	// stableTop sorts indices by value, best first, keeping index order among equals.
	stableTop := func(values []float32, n int) []int {
		idx := make([]int, len(values))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case values[a] > values[b]:
				return -1
			case values[a] < values[b]:
				return 1
			}
			return 0
		})
		return idx[:n]
	}
	for {
		allHit := true
		for b := range batch {
			acc := make([]float32, 0, nb*vocab)
			for j := range nb {
				lp := make([]float32, vocab)
				logSoftmax(lp, model(running[b][j].seq))
				r.process(lp, running[b][j].seq, lim, 2)
				for v := range lp {
					lp[v] += running[b][j].score
				}
				acc = append(acc, lp...)
			}
			top := stableTop(acc, k)
			candSeq := make([][]int, k)
			candScore := make([]float32, k)
			hits := make([]bool, k)
			for c, idx := range top {
				candSeq[c] = append(slices.Clone(running[b][idx/vocab].seq), idx%vocab)
				candScore[c] = acc[idx]
				hits[c] = slices.Contains(s.eos, idx%vocab) || curLen+1 >= maxLength
				allHit = allHit && hits[c]
			}
			// next running beams
			adj := make([]float32, k)
			for c := range adj {
				adj[c] = candScore[c]
				if hits[c] {
					adj[c] += big
				}
			}
			next := make([]hyp, nb)
			for j, c := range stableTop(adj, nb) {
				next[j] = hyp{candSeq[c], adj[c]}
			}
			// finished beams
			full := !slices.Contains(fin[b], false) && s.earlyStopping == EarlyStopWhenFull
			merged := make([]float32, 0, nb+k)
			for _, h := range done[b] {
				merged = append(merged, h.score)
			}
			for c := range k {
				v := candScore[c] / float32(math.Pow(float64(curLen+1-promptLen), s.lengthPenalty))
				if full {
					v += big
				}
				if !unsat[b] {
					v += big
				}
				if !(hits[c] && c < nb) {
					v += big
				}
				merged = append(merged, v)
			}
			newDone := make([]hyp, nb)
			newFin := make([]bool, nb)
			for j, m := range stableTop(merged, nb) {
				if m < nb {
					newDone[j], newFin[j] = done[b][m], fin[b][m]
				} else {
					newDone[j] = hyp{candSeq[m-nb], merged[m]}
					newFin[j] = hits[m-nb] && m-nb < nb
				}
			}
			running[b], done[b], fin[b] = next, newDone, newFin
		}
		curLen++
		anyUnsat, allFin := false, true
		for b := range batch {
			length := curLen - promptLen
			if s.earlyStopping == EarlyStopNever && s.lengthPenalty > 0 {
				length = maxLength - promptLen
			}
			best := running[b][0].score / float32(math.Pow(float64(length), s.lengthPenalty))
			worst := done[b][0].score
			for _, h := range done[b] {
				worst = min(worst, h.score)
			}
			improvable := false
			for j := range nb {
				w := big
				if fin[b][j] {
					w = worst
				}
				improvable = improvable || best > w
			}
			unsat[b] = unsat[b] && improvable
			anyUnsat = anyUnsat || unsat[b]
			allFin = allFin && !slices.Contains(fin[b], false)
		}
		if !anyUnsat || (allFin && s.earlyStopping == EarlyStopWhenFull) || allHit {
			break
		}
	}
	var out [][]int
	longest := 0
	for b := range batch {
		for j := range s.numReturn {
			gen := done[b][j].seq[promptLen:]
			longest = max(longest, len(gen))
			out = append(out, gen)
		}
	}
	fill := cfg.FillToken()
	for i, gen := range out {
		row := slices.Clone(gen)
		for len(row) < longest {
			row = append(row, fill)
		}
		out[i] = row
	}
	return out
}
