package tokenizer

import "unicode"

// postProcessor adds special tokens around an encoded sequence.
type postProcessor interface {
	process(enc Encoding) Encoding
	// addedCount is how many tokens process adds to a single sequence.
	addedCount() int
}

// specialPiece is one special token of a template: it may expand to
// several ids.
type specialPiece struct {
	ids    []int
	tokens []string
}

// templatePiece is either a special token or the input sequence.
type templatePiece struct {
	special  *specialPiece
	sequence bool
}

// templateProcessor is TemplateProcessing for single sequences, e.g.
// "[CLS] $A [SEP]" or "</s> $A".
type templateProcessor struct{ single []templatePiece }

func (p templateProcessor) process(enc Encoding) Encoding {
	var out Encoding
	for _, piece := range p.single {
		if piece.sequence {
			out.append(enc)
			continue
		}
		for k, id := range piece.special.ids {
			out.add(id, piece.special.tokens[k], [2]int{0, 0})
		}
	}
	return out
}

func (p templateProcessor) addedCount() int {
	n := 0
	for _, piece := range p.single {
		if !piece.sequence {
			n += len(piece.special.ids)
		}
	}
	return n
}

// sequenceProcessor applies processors in order.
type sequenceProcessor []postProcessor

func (q sequenceProcessor) process(enc Encoding) Encoding {
	for _, p := range q {
		enc = p.process(enc)
	}
	return enc
}

func (q sequenceProcessor) addedCount() int {
	n := 0
	for _, p := range q {
		n += p.addedCount()
	}
	return n
}

// byteLevelProcessor trims the whitespace that byte-level tokens carry
// (Ġ, spaces) out of their offsets.
type byteLevelProcessor struct {
	trimOffsets    bool
	addPrefixSpace bool
	table          *byteTable
}

func (p byteLevelProcessor) process(enc Encoding) Encoding {
	if !p.trimOffsets {
		return enc
	}
	out := enc.clone()
	space := p.table.toRune[' ']
	isSpace := func(r rune) bool { return r == space || unicode.IsSpace(r) }
	for i, tok := range out.Tokens {
		rs := []rune(tok)
		lead, trail := 0, 0
		for lead < len(rs) && isSpace(rs[lead]) {
			lead++
		}
		for trail < len(rs) && isSpace(rs[len(rs)-1-trail]) {
			trail++
		}
		off := out.Offsets[i]
		if lead > 0 {
			if (i == 0 || off[0] == 0) && p.addPrefixSpace && lead == 1 {
				lead = 0
			}
			off[0] = min(off[0]+lead, off[1])
		}
		if trail > 0 && off[1] >= trail {
			off[1] = max(off[1]-trail, off[0])
		}
		out.Offsets[i] = off
	}
	return out
}

func (byteLevelProcessor) addedCount() int { return 0 }
