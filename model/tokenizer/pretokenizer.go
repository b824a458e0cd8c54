package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// preTokenizer cuts a normalized span into the words the model tokenizes
// one by one.
type preTokenizer interface {
	preTokenize(s span) []span
}

// sequencePreTokenizer applies pre-tokenizers in order, each to every piece
// its predecessor produced.
type sequencePreTokenizer []preTokenizer

func (q sequencePreTokenizer) preTokenize(s span) []span {
	pieces := []span{s}
	for _, p := range q {
		var next []span
		for _, piece := range pieces {
			next = append(next, p.preTokenize(piece)...)
		}
		pieces = next
	}
	return pieces
}

// byteLevelPreTokenizer is GPT-2's: optional prefix space, the GPT-2 split
// pattern, then every UTF-8 byte mapped to a printable rune.
type byteLevelPreTokenizer struct {
	addPrefixSpace bool
	useRegex       bool
	table          *byteTable
}

func (p byteLevelPreTokenizer) preTokenize(s span) []span {
	if p.addPrefixSpace && len(s.text) > 0 && s.text[0] != ' ' {
		var b spanBuilder
		b.add(' ', s.align[0])
		b.text = append(b.text, s.text...)
		b.align = append(b.align, s.align...)
		s = b.span()
	}
	pieces := []span{s}
	if p.useRegex {
		pieces = s.splitMatches(gpt2Split(s.text), splitIsolated)
	}
	out := make([]span, 0, len(pieces))
	for _, piece := range pieces {
		out = append(out, p.toBytes(piece))
	}
	return out
}

// toBytes replaces each rune by the byte-level runes of its UTF-8 encoding.
func (p byteLevelPreTokenizer) toBytes(s span) span {
	var buf [utf8.UTFMax]byte
	return s.mapRunes(func(r rune, out []rune) []rune {
		n := utf8.EncodeRune(buf[:], r)
		for _, c := range buf[:n] {
			out = append(out, p.table.toRune[c])
		}
		return out
	})
}

// prependScheme says when Metaspace puts a replacement rune in front.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// metaspacePreTokenizer is SentencePiece's: spaces become the replacement
// rune (▁), which also starts the text, and each word keeps its leading ▁.
type metaspacePreTokenizer struct {
	replacement rune
	prepend     prependScheme
	split       bool
}

func (p metaspacePreTokenizer) preTokenize(s span) []span {
	s = s.mapRunes(func(r rune, out []rune) []rune {
		if r == ' ' {
			return append(out, p.replacement)
		}
		return append(out, r)
	})
	if len(s.text) > 0 && s.text[0] != p.replacement &&
		(p.prepend == prependAlways || (p.prepend == prependFirst && s.align[0][0] == 0)) {
		var b spanBuilder
		b.add(p.replacement, s.align[0])
		b.text = append(b.text, s.text...)
		b.align = append(b.align, s.align...)
		s = b.span()
	}
	if !p.split {
		return []span{s}
	}
	return s.splitMatches(literalPattern{p.replacement}.find(s.text), splitMergedWithNext)
}

// runMatches returns the maximal runs of runes satisfying keep.
func runMatches(text []rune, keep func(rune) bool) [][2]int {
	var out [][2]int
	start := -1
	for i, r := range text {
		if keep(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			out = append(out, [2]int{start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, [2]int{start, len(text)})
	}
	return out
}

// eachRune returns one match per rune satisfying keep.
func eachRune(text []rune, keep func(rune) bool) [][2]int {
	var out [][2]int
	for i, r := range text {
		if keep(r) {
			out = append(out, [2]int{i, i + 1})
		}
	}
	return out
}

// bertPreTokenizer splits on whitespace (dropped) and punctuation (kept as
// single-character words).
type bertPreTokenizer struct{}

func (bertPreTokenizer) preTokenize(s span) []span {
	var out []span
	for _, word := range s.splitMatches(runMatches(s.text, unicode.IsSpace), splitRemoved) {
		out = append(out, word.splitMatches(eachRune(word.text, isBertPunctuation), splitIsolated)...)
	}
	return out
}

func isBertPunctuation(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126)
	}
	return unicode.IsPunct(r)
}

// whitespacePreTokenizer keeps runs of word characters and runs of other
// non-space characters (`\w+|[^\w\s]+`).
type whitespacePreTokenizer struct{}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r) || unicode.Is(unicode.Pc, r)
}

func (whitespacePreTokenizer) preTokenize(s span) []span {
	var matches [][2]int
	for i := 0; i < len(s.text); {
		r := s.text[i]
		if unicode.IsSpace(r) {
			i++
			continue
		}
		word := isWordRune(r)
		j := i + 1
		for j < len(s.text) && !unicode.IsSpace(s.text[j]) && isWordRune(s.text[j]) == word {
			j++
		}
		matches = append(matches, [2]int{i, j})
		i = j
	}
	out := make([]span, 0, len(matches))
	for _, m := range matches {
		out = append(out, s.sub(m[0], m[1]))
	}
	return out
}

// whitespaceSplitPreTokenizer splits on whitespace, dropping it.
type whitespaceSplitPreTokenizer struct{}

func (whitespaceSplitPreTokenizer) preTokenize(s span) []span {
	return s.splitMatches(runMatches(s.text, unicode.IsSpace), splitRemoved)
}

// punctuationPreTokenizer splits on punctuation characters.
type punctuationPreTokenizer struct{ behavior splitBehavior }

func (p punctuationPreTokenizer) preTokenize(s span) []span {
	return s.splitMatches(eachRune(s.text, isBertPunctuation), p.behavior)
}

// digitsPreTokenizer splits digits from the rest, one by one or in runs.
type digitsPreTokenizer struct{ individual bool }

func (p digitsPreTokenizer) preTokenize(s span) []span {
	if p.individual {
		return s.splitMatches(eachRune(s.text, unicode.IsDigit), splitIsolated)
	}
	return s.splitMatches(runMatches(s.text, unicode.IsDigit), splitIsolated)
}

// splitPreTokenizer splits on a pattern with a delimiter behavior; invert
// makes the pattern's matches the words instead of the delimiters.
type splitPreTokenizer struct {
	pattern  pattern
	behavior splitBehavior
	invert   bool
}

func (p splitPreTokenizer) preTokenize(s span) []span {
	matches := p.pattern.find(s.text)
	if p.invert {
		matches = complementRanges(matches, len(s.text))
	}
	return s.splitMatches(matches, p.behavior)
}

// complementRanges returns the gaps between ordered ranges within [0, n).
func complementRanges(ranges [][2]int, n int) [][2]int {
	var out [][2]int
	prev := 0
	for _, r := range ranges {
		if r[0] > prev {
			out = append(out, [2]int{prev, r[0]})
		}
		prev = r[1]
	}
	if prev < n {
		out = append(out, [2]int{prev, n})
	}
	return out
}
