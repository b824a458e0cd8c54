package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// precompiledNormalizer is SentencePiece's compiled normalization rules
// (precompiled_charsmap, e.g. nmt_nfkc in T5 checkpoints): a double-array
// trie over UTF-8 bytes whose values index replacement strings.
type precompiledNormalizer struct {
	units       []uint32
	replacement []byte // NUL-terminated strings
}

// newPrecompiled decodes a base64 precompiled_charsmap: a little-endian
// uint32 trie size in bytes, the trie units, then the replacement strings.
func newPrecompiled(charsmap string) (normalizer, error) {
	blob, err := base64.StdEncoding.DecodeString(charsmap)
	if err != nil {
		return nil, fmt.Errorf("precompiled_charsmap: %w", err)
	}
	if len(blob) < 4 {
		return nil, fmt.Errorf("precompiled_charsmap: %d bytes, too short", len(blob))
	}
	size := int(binary.LittleEndian.Uint32(blob))
	if size%4 != 0 || size > len(blob)-4 || size == 0 {
		return nil, fmt.Errorf("precompiled_charsmap: trie size %d does not fit %d bytes", size, len(blob)-4)
	}
	p := &precompiledNormalizer{units: make([]uint32, size/4), replacement: blob[4+size:]}
	for i := range p.units {
		p.units[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
	}
	return p, nil
}

// lookup returns the replacement for the shortest rule prefixing key.
func (p *precompiledNormalizer) lookup(key []byte) ([]rune, bool) {
	offset := func(u uint32) int { return int((u >> 10) << ((u & (1 << 9)) >> 6)) }
	pos := 0
	pos ^= offset(p.units[pos])
	for _, c := range key {
		if c == 0 {
			break
		}
		pos ^= int(c)
		if pos < 0 || pos >= len(p.units) {
			return nil, false
		}
		u := p.units[pos]
		if u&((1<<31)|0xFF) != uint32(c) {
			return nil, false
		}
		pos ^= offset(u)
		if pos < 0 || pos >= len(p.units) {
			return nil, false
		}
		if (u>>8)&1 == 1 {
			start := int(p.units[pos] & ((1 << 31) - 1))
			if start > len(p.replacement) {
				return nil, false
			}
			end := start
			for end < len(p.replacement) && p.replacement[end] != 0 {
				end++
			}
			out := p.replacement[start:end]
			if !utf8.Valid(out) {
				return nil, false
			}
			return []rune(string(out)), true
		}
	}
	return nil, false
}

// normalize rewrites each grapheme cluster (shorter than 6 bytes) that a
// rule prefixes as a whole, otherwise each character on its own, as the
// reference does.
func (p *precompiledNormalizer) normalize(s span) span {
	var b spanBuilder
	str := string(s.text)
	at := 0 // rune index of the current grapheme in s
	state := -1
	for len(str) > 0 {
		var g string
		g, str, _, state = uniseg.FirstGraphemeClusterInString(str, state)
		n := utf8.RuneCountInString(g)
		if len(g) < 6 {
			if repl, ok := p.lookup([]byte(g)); ok {
				b.addAll(repl, s.offsets(at, at+n))
				at += n
				continue
			}
		}
		for _, r := range g {
			if repl, ok := p.lookup([]byte(string(r))); ok {
				b.addAll(repl, s.align[at])
			} else {
				b.add(r, s.align[at])
			}
			at++
		}
	}
	return b.span()
}
