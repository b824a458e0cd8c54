package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder turns token strings back into text pieces; the pieces are joined
// to form the decoded text.
type decoder interface {
	decode(tokens []string) []string
}

// sequenceDecoder applies decoders in order.
type sequenceDecoder []decoder

func (q sequenceDecoder) decode(tokens []string) []string {
	for _, d := range q {
		tokens = d.decode(tokens)
	}
	return tokens
}

// byteLevelDecoder maps byte-level runes back to bytes and decodes them as
// UTF-8, replacing invalid sequences with U+FFFD.
type byteLevelDecoder struct{ table *byteTable }

func (d byteLevelDecoder) decode(tokens []string) []string {
	var buf []byte
	for _, tok := range tokens {
		buf = d.appendBytes(buf, tok)
	}
	return []string{decodeUTF8Lossy(buf)}
}

// appendBytes appends the bytes a token stands for; a token with a rune
// outside the byte table stands for its own UTF-8 bytes.
func (d byteLevelDecoder) appendBytes(buf []byte, tok string) []byte {
	start := len(buf)
	for _, r := range tok {
		b, ok := d.table.toByte[r]
		if !ok {
			return append(buf[:start], tok...)
		}
		buf = append(buf, b)
	}
	return buf
}

// decodeUTF8Lossy decodes b like Python's bytes.decode(errors="replace") and
// Rust's String::from_utf8_lossy: each maximal prefix of a valid sequence
// that cannot be completed becomes one U+FFFD.
func decodeUTF8Lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			sb.WriteRune(r)
			b = b[size:]
			continue
		}
		sb.WriteRune(utf8.RuneError)
		b = b[invalidPrefixLen(b):]
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal subpart of an ill-formed
// sequence at the start of b (Unicode §3.9): at least one byte.
func invalidPrefixLen(b []byte) int {
	lead := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range of the first continuation byte
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		need = 1
	case lead == 0xE0:
		need, lo = 2, 0xA0
	case lead == 0xED:
		need, hi = 2, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		need = 2
	case lead == 0xF0:
		need, lo = 3, 0x90
	case lead == 0xF4:
		need, hi = 3, 0x8F
	case lead >= 0xF1 && lead <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		c := b[n]
		if k == 0 && (c < lo || c > hi) || k > 0 && (c < 0x80 || c > 0xBF) {
			break
		}
		n++
	}
	return n
}

// metaspaceDecoder turns ▁ back into spaces, dropping the one the
// pre-tokenizer put in front of the first token.
type metaspaceDecoder struct {
	replacement rune
	prepend     prependScheme
}

func (d metaspaceDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		var sb strings.Builder
		for _, r := range tok {
			if r == d.replacement {
				if i == 0 && d.prepend != prependNever {
					continue
				}
				r = ' '
			}
			sb.WriteRune(r)
		}
		out[i] = sb.String()
	}
	return out
}

// wordPieceDecoder glues ##-continuations to the previous token and puts a
// space before the others; cleanup removes spaces before punctuation.
type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (d wordPieceDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		if i > 0 {
			if strings.HasPrefix(tok, d.prefix) {
				tok = strings.Replace(tok, d.prefix, "", 1)
			} else {
				tok = " " + tok
			}
		}
		if d.cleanup {
			tok = replaceInOrder(tok, " .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'",
				" n't", "n't", " 'm", "'m", " do not", " don't", " 's", "'s", " 've", "'ve", " 're", "'re")
		}
		out[i] = tok
	}
	return out
}

// replaceDecoder replaces a pattern in every token.
type replaceDecoder struct {
	pattern pattern
	content string
}

func (d replaceDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		out[i] = string(replaceNormalizer{pattern: d.pattern, content: []rune(d.content)}.normalize(newSpan([]rune(tok), 0)).text)
	}
	return out
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decode(tokens []string) []string { return []string{strings.Join(tokens, "")} }

// stripDecoder removes a character a given number of times from each
// token's start and end.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		rs := []rune(tok)
		lo, hi := 0, len(rs)
		for k := 0; k < d.start && lo < hi && rs[lo] == d.content; k++ {
			lo++
		}
		for k := 0; k < d.stop && hi > lo && rs[hi-1] == d.content; k++ {
			hi--
		}
		out[i] = string(rs[lo:hi])
	}
	return out
}

// byteFallbackDecoder turns runs of <0xXX> tokens back into text.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decode(tokens []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) > 0 {
			if utf8.Valid(pending) {
				out = append(out, string(pending))
			} else {
				for range pending {
					out = append(out, string(utf8.RuneError))
				}
			}
			pending = pending[:0]
		}
	}
	for _, tok := range tokens {
		if len(tok) == 6 && strings.HasPrefix(tok, "<0x") && tok[5] == '>' {
			if v, err := strconv.ParseUint(tok[3:5], 16, 8); err == nil {
				pending = append(pending, byte(v))
				continue
			}
		}
		flush()
		out = append(out, tok)
	}
	flush()
	return out
}

// bpeSuffixDecoder turns an end-of-word suffix into a space (none after the
// last token).
type bpeSuffixDecoder struct{ suffix string }

func (d bpeSuffixDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		repl := " "
		if i == len(tokens)-1 {
			repl = ""
		}
		out[i] = strings.ReplaceAll(tok, d.suffix, repl)
	}
	return out
}
