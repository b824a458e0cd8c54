package tokenizer

import (
	"fmt"
	"math"
)

// unigramModel is SentencePiece's unigram language model: the tokenization
// of a word is the Viterbi path of highest total piece score.
type unigramModel struct {
	vocabulary
	scores       []float64
	trie         *runeTrie
	unkID        int // -1 when there is none
	minScore     float64
	byteFallback bool
	cache        *wordCache
}

// unkPenalty is how far below the lowest piece score an unknown character scores.
const unkPenalty = 10.0

func newUnigram(pieces []string, scores []float64, unkID int, byteFallback bool) (*unigramModel, error) {
	if unkID >= len(pieces) {
		return nil, fmt.Errorf("unk_id %d is outside the %d-piece vocabulary", unkID, len(pieces))
	}
	ids := make(map[string]int, len(pieces))
	m := &unigramModel{scores: scores, trie: newRuneTrie(), unkID: unkID, minScore: math.Inf(1),
		byteFallback: byteFallback, cache: newWordCache(10000)}
	for id, p := range pieces {
		ids[p] = id
		m.trie.insert([]rune(p), id)
		m.minScore = math.Min(m.minScore, scores[id])
	}
	m.vocabulary = newVocabulary(ids)
	// Every id decodes to its own piece, even when a piece repeats.
	for id, p := range pieces {
		m.tokens[id] = p
	}
	return m, nil
}

func (m *unigramModel) tokenize(word []rune) ([]modelToken, error) {
	if len(word) == 0 {
		return nil, nil
	}
	return cachedTokenize(m.cache, word, m.tokenizeWord)
}

// pathNode is the best path that ends at a rune position.
type pathNode struct {
	id      int
	score   float64
	startAt int // -1: no path reaches here yet
}

func (m *unigramModel) tokenizeWord(word []rune) ([]modelToken, error) {
	n := len(word)
	unkScore := m.minScore - unkPenalty
	best := make([]pathNode, n+1)
	for i := range best {
		best[i].startAt = -1
	}
	consider := func(from, to, id int, score float64) {
		cand := best[from].score + score
		if best[to].startAt < 0 || cand > best[to].score {
			best[to] = pathNode{id: id, score: cand, startAt: from}
		}
	}
	for start := 0; start < n; start++ {
		hasSingle := false
		m.trie.eachPrefix(word[start:], func(length, id int) {
			consider(start, start+length, id, m.scores[id])
			if length == 1 {
				hasSingle = true
			}
		})
		if !hasSingle {
			if m.unkID < 0 {
				return nil, errNoUnknown
			}
			consider(start, start+1, m.unkID, unkScore)
		}
	}
	// Walk back, fusing consecutive unknown pieces into one token.
	var rev []modelToken
	for end := n; end > 0; {
		node := best[end]
		if m.unkID >= 0 && node.id == m.unkID && len(rev) > 0 && rev[len(rev)-1].id == m.unkID && rev[len(rev)-1].start == end {
			rev[len(rev)-1].start = node.startAt
		} else {
			rev = append(rev, modelToken{id: node.id, start: node.startAt, end: end})
		}
		end = node.startAt
	}
	out := make([]modelToken, 0, len(rev))
	for i := len(rev) - 1; i >= 0; i-- {
		t := rev[i]
		t.value = string(word[t.start:t.end])
		if id, ok := m.ids[t.value]; ok {
			t.id = id
			out = append(out, t)
			continue
		}
		if m.byteFallback {
			if toks, ok := m.byteFallbackTokens(t); ok {
				out = append(out, toks...)
				continue
			}
		}
		t.id = m.unkID
		out = append(out, t)
	}
	return out, nil
}

// byteFallbackTokens spells an unknown piece as <0xXX> byte tokens.
func (m *unigramModel) byteFallbackTokens(t modelToken) ([]modelToken, bool) {
	var out []modelToken
	for _, b := range []byte(t.value) {
		piece := fmt.Sprintf("<0x%02X>", b)
		id, ok := m.ids[piece]
		if !ok {
			return nil, false
		}
		out = append(out, modelToken{id: id, value: piece, start: t.start, end: t.end})
	}
	return out, true
}

// runeTrie finds every vocabulary piece that is a prefix of a text.
type runeTrie struct {
	children map[rune]*runeTrie
	id       int // -1 when no piece ends here
}

func newRuneTrie() *runeTrie { return &runeTrie{id: -1} }

func (t *runeTrie) insert(piece []rune, id int) {
	node := t
	for _, r := range piece {
		if node.children == nil {
			node.children = make(map[rune]*runeTrie)
		}
		next, ok := node.children[r]
		if !ok {
			next = newRuneTrie()
			node.children[r] = next
		}
		node = next
	}
	node.id = id // a repeated piece keeps its last id, like the id map
}

// eachPrefix calls f(length, id) for every piece that prefixes text, shortest first.
func (t *runeTrie) eachPrefix(text []rune, f func(length, id int)) {
	node := t
	for i, r := range text {
		next, ok := node.children[r]
		if !ok {
			return
		}
		node = next
		if node.id >= 0 {
			f(i+1, node.id)
		}
	}
}
