package tokenizer

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization, keeping alignments.
type normalizer interface {
	normalize(s span) span
}

// sequenceNormalizer applies normalizers in order.
type sequenceNormalizer []normalizer

func (q sequenceNormalizer) normalize(s span) span {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

// unicodeNormalizer applies one Unicode normalization form (NFC, NFD, NFKC, NFKD).
type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(s span) span {
	str := string(s.text)
	if u.form.IsNormalString(str) {
		return s
	}
	var b spanBuilder
	runeAt := 0
	for len(str) > 0 {
		n := u.form.NextBoundaryInString(str, true)
		if n <= 0 {
			n = len(str)
		}
		seg := str[:n]
		str = str[n:]
		segRunes := utf8.RuneCountInString(seg)
		out := []rune(u.form.String(seg))
		if len(out) == segRunes {
			for k, r := range out {
				b.add(r, s.align[runeAt+k])
			}
		} else {
			a := [2]int{s.align[runeAt][0], s.align[runeAt+segRunes-1][1]}
			b.addAll(out, a)
		}
		runeAt += segRunes
	}
	return b.span()
}

// lowercaseNormalizer lowercases every character.
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s span) span {
	return s.mapRunes(func(r rune, out []rune) []rune {
		if r == 'İ' { // the one full (multi-rune) lowercase mapping in Unicode
			return append(out, 'i', '\u0307')
		}
		return append(out, unicode.ToLower(r))
	})
}

// stripAccentsNormalizer decomposes (NFD) and drops combining marks (Mn).
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(s span) span {
	s = unicodeNormalizer{norm.NFD}.normalize(s)
	return s.mapRunes(func(r rune, out []rune) []rune {
		if unicode.Is(unicode.Mn, r) {
			return out
		}
		return append(out, r)
	})
}

// bertNormalizer is BERT's text cleaning: drop control characters, map
// whitespace to spaces, pad CJK ideographs with spaces, strip accents and
// lowercase.
type bertNormalizer struct {
	cleanText, handleChineseChars, stripAccents, lowercase bool
}

func (n bertNormalizer) normalize(s span) span {
	if n.cleanText {
		s = s.mapRunes(func(r rune, out []rune) []rune {
			switch {
			case r == 0 || r == utf8.RuneError || isBertControl(r):
				return out
			case isBertWhitespace(r):
				return append(out, ' ')
			}
			return append(out, r)
		})
	}
	if n.handleChineseChars {
		s = s.mapRunes(func(r rune, out []rune) []rune {
			if isCJK(r) {
				return append(out, ' ', r, ' ')
			}
			return append(out, r)
		})
	}
	if n.stripAccents {
		s = stripAccentsNormalizer{}.normalize(s)
	}
	if n.lowercase {
		s = lowercaseNormalizer{}.normalize(s)
	}
	return s
}

func isBertWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if unicode.Is(unicode.C, r) {
		return true
	}
	// Unassigned code points (Cn) count as "other" too.
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// pattern finds delimiter matches in text, as rune ranges.
type pattern interface {
	find(text []rune) [][2]int
}

// literalPattern matches a fixed string.
type literalPattern []rune

func (p literalPattern) find(text []rune) [][2]int {
	var out [][2]int
	if len(p) == 0 {
		return nil
	}
	for i := 0; i+len(p) <= len(text); {
		if runesHavePrefix(text[i:], p) {
			out = append(out, [2]int{i, i + len(p)})
			i += len(p)
			continue
		}
		i++
	}
	return out
}

func runesHavePrefix(text, prefix []rune) bool {
	if len(prefix) > len(text) {
		return false
	}
	for i, r := range prefix {
		if text[i] != r {
			return false
		}
	}
	return true
}

// regexPattern matches a regular expression (RE2 syntax: patterns with
// lookaround are rejected when the tokenizer is loaded).
type regexPattern struct{ re *regexp.Regexp }

func (p regexPattern) find(text []rune) [][2]int {
	str := string(text)
	locs := p.re.FindAllStringIndex(str, -1)
	if len(locs) == 0 {
		return nil
	}
	// Convert byte offsets to rune offsets.
	out := make([][2]int, 0, len(locs))
	byteToRune := make([]int, len(str)+1)
	ri := 0
	for bi := range str {
		byteToRune[bi] = ri
		ri++
	}
	byteToRune[len(str)] = ri
	for bi := len(str) - 1; bi >= 0; bi-- {
		if !utf8.RuneStart(str[bi]) {
			byteToRune[bi] = byteToRune[bi+1]
		}
	}
	for _, l := range locs {
		if l[1] > l[0] {
			out = append(out, [2]int{byteToRune[l[0]], byteToRune[l[1]]})
		}
	}
	return out
}

// replaceNormalizer replaces every match of a pattern with content. The
// replacement runes are aligned to the whole match.
type replaceNormalizer struct {
	pattern pattern
	content []rune
}

func (n replaceNormalizer) normalize(s span) span {
	matches := n.pattern.find(s.text)
	if len(matches) == 0 {
		return s
	}
	var b spanBuilder
	prev := 0
	for _, m := range matches {
		for i := prev; i < m[0]; i++ {
			b.add(s.text[i], s.align[i])
		}
		b.addAll(n.content, s.offsets(m[0], m[1]))
		prev = m[1]
	}
	for i := prev; i < len(s.text); i++ {
		b.add(s.text[i], s.align[i])
	}
	return b.span()
}

// prependNormalizer puts a string in front of non-empty text.
type prependNormalizer struct{ prefix []rune }

func (n prependNormalizer) normalize(s span) span {
	if len(s.text) == 0 {
		return s
	}
	var b spanBuilder
	b.addAll(n.prefix, s.align[0])
	b.text = append(b.text, s.text...)
	b.align = append(b.align, s.align...)
	return b.span()
}

// stripNormalizer removes leading and/or trailing whitespace.
type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s span) span {
	start, end := 0, len(s.text)
	if n.left {
		for start < end && unicode.IsSpace(s.text[start]) {
			start++
		}
	}
	if n.right {
		for end > start && unicode.IsSpace(s.text[end-1]) {
			end--
		}
	}
	return s.sub(start, end)
}

// newRegexPattern compiles a reference regex, naming it on failure.
func newRegexPattern(expr string) (pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	return regexPattern{re}, nil
}

// cleanUpTokenization is transformers' clean_up_tokenization: it removes the
// space before punctuation and English contractions, one replacement after
// the other as the reference does.
func cleanUpTokenization(s string) string {
	return replaceInOrder(s, " .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'",
		" n't", "n't", " 'm", "'m", " 's", "'s", " 've", "'ve", " 're", "'re")
}

// replaceInOrder applies strings.ReplaceAll for each (old, new) pair in turn.
func replaceInOrder(s string, pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}
