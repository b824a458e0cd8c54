package tokenizer

import (
	"fmt"
	"strings"
)

// bpeMerge is what merging a pair of tokens gives: its priority (lower
// merges first) and the merged token's id.
type bpeMerge struct {
	rank, id int
}

// bpeModel is byte-pair encoding with a merge-rank table.
type bpeModel struct {
	vocabulary
	merges       map[[2]int]bpeMerge
	unkToken     string
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	cache        *wordCache
}

// newBPE builds the model; merges are pairs of token strings in rank order.
func newBPE(vocab map[string]int, merges [][2]string, m bpeModel) (*bpeModel, error) {
	m.vocabulary = newVocabulary(vocab)
	m.merges = make(map[[2]int]bpeMerge, len(merges))
	m.cache = newWordCache(10000)
	for rank, pair := range merges {
		a, ok := vocab[pair[0]]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", rank, pair[0], pair[1], pair[0])
		}
		b, ok := vocab[pair[1]]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", rank, pair[0], pair[1], pair[1])
		}
		merged := pair[0] + strings.TrimPrefix(pair[1], m.prefix)
		id, ok := vocab[merged]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): merged token %q is not in the vocabulary", rank, pair[0], pair[1], merged)
		}
		// A repeated pair keeps its last rank, as in the reference.
		m.merges[[2]int{a, b}] = bpeMerge{rank: rank, id: id}
	}
	return &m, nil
}

func (m *bpeModel) tokenize(word []rune) ([]modelToken, error) {
	if len(word) == 0 {
		return nil, nil
	}
	return cachedTokenize(m.cache, word, m.tokenizeWord)
}

// bpeSymbol is a token in the middle of merging: an id and its rune range.
type bpeSymbol struct {
	id         int
	start, end int
}

func (m *bpeModel) tokenizeWord(word []rune) ([]modelToken, error) {
	if m.ignoreMerges {
		if id, ok := m.ids[string(word)]; ok {
			return []modelToken{{id: id, value: string(word), start: 0, end: len(word)}}, nil
		}
	}
	symbols, err := m.initialSymbols(word)
	if err != nil {
		return nil, err
	}
	for len(symbols) > 1 {
		best, bestAt := bpeMerge{rank: -1}, -1
		for i := 0; i+1 < len(symbols); i++ {
			mg, ok := m.merges[[2]int{symbols[i].id, symbols[i+1].id}]
			if ok && (bestAt < 0 || mg.rank < best.rank) {
				best, bestAt = mg, i
			}
		}
		if bestAt < 0 {
			break
		}
		symbols[bestAt] = bpeSymbol{id: best.id, start: symbols[bestAt].start, end: symbols[bestAt+1].end}
		symbols = append(symbols[:bestAt+1], symbols[bestAt+2:]...)
	}
	out := make([]modelToken, len(symbols))
	for i, s := range symbols {
		out[i] = modelToken{id: s.id, value: m.tokens[s.id], start: s.start, end: s.end}
	}
	return out, nil
}

// initialSymbols maps every rune of word to its token, falling back to byte
// tokens or the unknown token.
func (m *bpeModel) initialSymbols(word []rune) ([]bpeSymbol, error) {
	symbols := make([]bpeSymbol, 0, len(word))
	unkID := -1
	if m.unkToken != "" {
		id, ok := m.ids[m.unkToken]
		if !ok {
			return nil, fmt.Errorf("unk token %q is not in the vocabulary", m.unkToken)
		}
		unkID = id
	}
	for i, r := range word {
		s := string(r)
		if i > 0 {
			s = m.prefix + s
		}
		if i == len(word)-1 {
			s += m.suffix
		}
		if id, ok := m.ids[s]; ok {
			symbols = append(symbols, bpeSymbol{id: id, start: i, end: i + 1})
			continue
		}
		if m.byteFallback {
			if ids, ok := m.byteTokens(r); ok {
				for _, id := range ids {
					symbols = append(symbols, bpeSymbol{id: id, start: i, end: i + 1})
				}
				continue
			}
		}
		if unkID < 0 {
			continue // the reference drops pieces it cannot represent
		}
		if n := len(symbols); m.fuseUnk && n > 0 && symbols[n-1].id == unkID && symbols[n-1].end == i {
			symbols[n-1].end = i + 1
			continue
		}
		symbols = append(symbols, bpeSymbol{id: unkID, start: i, end: i + 1})
	}
	return symbols, nil
}

// byteTokens returns the <0xXX> tokens for the UTF-8 bytes of r, if all exist.
func (m *bpeModel) byteTokens(r rune) ([]int, bool) {
	var ids []int
	for _, b := range []byte(string(r)) {
		id, ok := m.ids[fmt.Sprintf("<0x%02X>", b)]
		if !ok {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}
