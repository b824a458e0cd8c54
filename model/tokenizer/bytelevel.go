package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// byteTable maps each byte to the printable rune GPT-2's byte-level BPE uses
// for it, and back.
type byteTable struct {
	toRune [256]rune
	toByte map[rune]byte
}

// newByteTable builds the GPT-2 mapping: printable Latin-1 bytes map to
// themselves, the other bytes to U+0100 upwards in byte order.
func newByteTable() *byteTable {
	t := &byteTable{toByte: make(map[rune]byte, 256)}
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = next
			next++
		}
		t.toRune[b] = r
		t.toByte[r] = byte(b)
	}
	return t
}

// gpt2Split returns the rune ranges matched by GPT-2's pre-tokenization
// pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
// implemented by hand because Go's regexp has no lookahead.
func gpt2Split(text []rune) [][2]int {
	var out [][2]int
	n := len(text)
	for i := 0; i < n; {
		end := gpt2Match(text, i)
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

type runeClass int

const (
	classLetter runeClass = iota
	classNumber
	classSpace
	classOther
)

func classify(r rune) runeClass {
	switch {
	case r < utf8.RuneSelf:
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			return classLetter
		case r >= '0' && r <= '9':
			return classNumber
		case r == ' ', r >= '\t' && r <= '\r':
			return classSpace
		}
		return classOther
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// gpt2Match returns the end of the pattern match starting at i (i < len(text)).
func gpt2Match(text []rune, i int) int {
	n := len(text)
	r := text[i]
	if r == '\'' && i+1 < n {
		switch text[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < n && text[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < n && text[i+2] == 'l' {
				return i + 3
			}
		}
	}
	start := i
	if r == ' ' && i+1 < n && classify(text[i+1]) != classSpace {
		start = i + 1
	}
	c := classify(text[start])
	if c != classSpace {
		j := start + 1
		for j < n && classify(text[j]) == c {
			j++
		}
		return j
	}
	// Whitespace: take the run, but leave its last rune for the next match
	// when a non-space follows (the `\s+(?!\S)` alternative).
	j := i + 1
	for j < n && classify(text[j]) == classSpace {
		j++
	}
	if j < n && j-i > 1 {
		return j - 1
	}
	return j
}
