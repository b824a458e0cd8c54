package generate

import (
	"container/heap"
	"math"
	"slices"
)

// The logits processors below each work on one row's scores (len vocab) and
// that row's ids so far (prompt followed by the generated tokens), in place,
// in float32 as Hugging Face's tensors are. generate applies them in Hugging
// Face's order: repetition penalty, no-repeat n-gram, minimum length, then,
// only when sampling, temperature, top-k and top-p.

var negInf = float32(math.Inf(-1))

// repetitionPenalty penalises every distinct token of ids once: a negative
// score is multiplied by penalty, any other score divided by it
// (RepetitionPenaltyLogitsProcessor; in beam search the scores are log
// probabilities, all <= 0, so they are multiplied).
func repetitionPenalty(scores []float32, ids []int, penalty float32, seen []bool) {
	clear(seen)
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if s := scores[id]; s < 0 {
			scores[id] = s * penalty
		} else {
			scores[id] = s / penalty
		}
	}
}

// noRepeatNGram bans every token that would complete an n-gram already in ids:
// each window of n ids whose first n-1 match the last n-1 ids bans its last id
// (NoRepeatNGramLogitsProcessor). Nothing is banned before ids holds n tokens.
func noRepeatNGram(scores []float32, ids []int, n int) {
	cur := len(ids)
	if n <= 0 || cur < n {
		return
	}
	prefix := ids[cur-n+1:]
	for start := 0; start+n <= cur; start++ {
		if slices.Equal(ids[start:start+n-1], prefix) {
			scores[ids[start+n-1]] = negInf
		}
	}
}

// maskEOS sets every EOS score to -inf (MinLengthLogitsProcessor and
// MinNewTokensLengthLogitsProcessor while the sequence is too short).
func maskEOS(scores []float32, eos []int) {
	for _, id := range eos {
		if id >= 0 && id < len(scores) {
			scores[id] = negInf
		}
	}
}

// temperature divides every score by t (TemperatureLogitsWarper).
func temperature(scores []float32, t float32) {
	for i := range scores {
		scores[i] /= t
	}
}

// topK sets to -inf every score below the k-th largest, keeping ties
// (TopKLogitsWarper with k raised to minKeep and capped at the vocabulary).
func topK(scores []float32, k, minKeep int) {
	k = min(max(k, minKeep), len(scores))
	if k <= 0 || k == len(scores) {
		return
	}
	threshold := kthLargest(scores, k)
	for i, s := range scores {
		if s < threshold {
			scores[i] = negInf
		}
	}
}

// kthLargest returns the k-th largest score using a min-heap of the k best.
func kthLargest(scores []float32, k int) float32 {
	h := make(minHeap, 0, k)
	for _, s := range scores {
		if len(h) < k {
			heap.Push(&h, s)
		} else if s > h[0] {
			h[0] = s
			heap.Fix(&h, 0)
		}
	}
	return h[0]
}

type minHeap []float32

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(float32)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// topP keeps the smallest set of best tokens whose probabilities add up to p
// and sets the rest to -inf (TopPLogitsWarper): scores are sorted ascending
// (ties by index), and a token is removed when the cumulative probability up
// to and including it is <= 1-p, except the minKeep best.
func topP(scores []float32, p float64, minKeep int) {
	if p >= 1 {
		return
	}
	// Tokens already at -inf have probability 0: they sort first and are removed
	// anyway, so only the others need sorting.
	order := make([]int, 0, len(scores))
	for i, s := range scores {
		if s != negInf {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	probs := softmax64(scores)
	cut := 1 - p
	var cumulative float64
	for rank, i := range order {
		cumulative += probs[i]
		if cumulative > cut || rank >= len(order)-minKeep {
			break
		}
		scores[i] = negInf
	}
}

// softmax64 returns the max-subtracted softmax of scores in float64.
func softmax64(scores []float32) []float64 {
	best := negInf
	for _, s := range scores {
		best = max(best, s)
	}
	out := make([]float64, len(scores))
	if math.IsInf(float64(best), -1) {
		return out
	}
	var total float64
	for i, s := range scores {
		e := math.Exp(float64(s - best))
		out[i] = e
		total += e
	}
	for i := range out {
		out[i] /= total
	}
	return out
}

// logSoftmax writes the log-softmax of src into dst in float32: each value
// minus the row maximum, minus the log of the sum of exponentials (summed in
// float64 for accuracy).
func logSoftmax(dst, src []float32) {
	best := negInf
	for _, s := range src {
		best = max(best, s)
	}
	var total float64
	for _, s := range src {
		total += math.Exp(float64(s - best))
	}
	logTotal := float32(math.Log(total))
	for i, s := range src {
		dst[i] = (s - best) - logTotal
	}
}

// argmax returns the index of the largest score, the lowest index among
// equals, as torch.argmax does (a NaN counts as the largest).
func argmax(scores []float32) int {
	best := 0
	for i, s := range scores {
		if s != s {
			return i
		}
		if s > scores[best] {
			best = i
		}
	}
	return best
}
