package tokenizer

import (
	"sort"
	"unicode"
)

// AddedToken is a token matched verbatim in the input before the model runs
// (special tokens such as "</s>" or "<image>", and user-added words).
type AddedToken struct {
	ID      int
	Content string
	// Special tokens are dropped by Decode when asked to skip them.
	Special bool
	// LStrip and RStrip make the match swallow whitespace on that side.
	LStrip, RStrip bool
	// SingleWord only matches when not inside a word.
	SingleWord bool
	// Normalized tokens are matched in the normalized text, others in the
	// original text.
	Normalized bool
}

// addedMatcher finds added tokens in text: at the leftmost position where
// any matches, the longest one wins.
type addedMatcher struct {
	tokens  []AddedToken
	runes   [][]rune // pattern of each token (normalized content for normalized tokens)
	byFirst map[rune][]int
}

func newAddedMatcher(tokens []AddedToken, patterns [][]rune) *addedMatcher {
	m := &addedMatcher{tokens: tokens, runes: patterns, byFirst: make(map[rune][]int)}
	for i, p := range patterns {
		if len(p) > 0 {
			m.byFirst[p[0]] = append(m.byFirst[p[0]], i)
		}
	}
	for _, idx := range m.byFirst {
		sort.SliceStable(idx, func(a, b int) bool { return len(patterns[idx[a]]) > len(patterns[idx[b]]) })
	}
	return m
}

// addedPiece is a piece of text, either an added token (token >= 0) or
// text still to be tokenized (token == -1).
type addedPiece struct {
	span  span
	token int
}

// split cuts s into added-token matches and the text between them.
func (m *addedMatcher) split(s span) []addedPiece {
	if m == nil || len(m.byFirst) == 0 {
		return []addedPiece{{span: s, token: -1}}
	}
	var out []addedPiece
	text := s.text
	done := 0 // end of the previous match
	for i := 0; i < len(text); {
		k, end := m.longestAt(text, i)
		if k < 0 {
			i++
			continue
		}
		tok := m.tokens[k]
		start := i
		if tok.SingleWord && ((start > 0 && isWordChar(text[start-1])) || (end < len(text) && isWordChar(text[end]))) {
			i++
			continue
		}
		if tok.LStrip {
			for start > done && unicode.IsSpace(text[start-1]) {
				start--
			}
		}
		if tok.RStrip {
			for end < len(text) && unicode.IsSpace(text[end]) {
				end++
			}
		}
		if start > done {
			out = append(out, addedPiece{span: s.sub(done, start), token: -1})
		}
		out = append(out, addedPiece{span: s.sub(start, end), token: k})
		done, i = end, end
	}
	if done < len(text) {
		out = append(out, addedPiece{span: s.sub(done, len(text)), token: -1})
	}
	return out
}

// longestAt returns the token with the longest pattern matching at i, and
// where the match ends; -1 when none matches.
func (m *addedMatcher) longestAt(text []rune, i int) (int, int) {
	for _, k := range m.byFirst[text[i]] {
		if runesHavePrefix(text[i:], m.runes[k]) {
			return k, i + len(m.runes[k])
		}
	}
	return -1, 0
}

func isWordChar(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }
