package tokenizer

// span is a piece of (possibly normalized) text that remembers, for every
// rune, which characters of the original input it came from. Offsets are in
// characters (Unicode code points) of the original text, as the reference
// reports them.
type span struct {
	text  []rune
	align [][2]int
}

// newSpan wraps original text: rune i comes from character i.
func newSpan(text []rune, offset int) span {
	align := make([][2]int, len(text))
	for i := range text {
		align[i] = [2]int{offset + i, offset + i + 1}
	}
	return span{text: text, align: align}
}

// sub returns runes [start, end) of s.
func (s span) sub(start, end int) span {
	return span{text: s.text[start:end], align: s.align[start:end]}
}

// offsets returns the original character range covered by runes [start, end).
func (s span) offsets(start, end int) [2]int {
	if start >= end || start >= len(s.align) {
		if len(s.align) == 0 {
			return [2]int{0, 0}
		}
		if start >= len(s.align) {
			p := s.align[len(s.align)-1][1]
			return [2]int{p, p}
		}
		p := s.align[start][0]
		return [2]int{p, p}
	}
	return [2]int{s.align[start][0], s.align[end-1][1]}
}

// spanBuilder accumulates runes with their alignments.
type spanBuilder struct {
	text  []rune
	align [][2]int
}

func (b *spanBuilder) add(r rune, a [2]int) {
	b.text = append(b.text, r)
	b.align = append(b.align, a)
}

// addAll appends every rune of rs, each aligned to a.
func (b *spanBuilder) addAll(rs []rune, a [2]int) {
	for _, r := range rs {
		b.add(r, a)
	}
}

func (b *spanBuilder) span() span { return span{text: b.text, align: b.align} }

// mapRunes replaces every rune of s by f(rune) (zero or more runes), keeping
// each replacement aligned to the rune it came from.
func (s span) mapRunes(f func(r rune, out []rune) []rune) span {
	var b spanBuilder
	b.text = make([]rune, 0, len(s.text))
	b.align = make([][2]int, 0, len(s.text))
	var buf []rune
	for i, r := range s.text {
		buf = f(r, buf[:0])
		b.addAll(buf, s.align[i])
	}
	return b.span()
}

// splitBehavior says what happens to a delimiter when a span is split.
type splitBehavior int

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

// splitMatches cuts s at the given non-overlapping, ordered rune ranges
// (matches of a delimiter), treating them according to behavior. Empty
// pieces are dropped.
func (s span) splitMatches(matches [][2]int, behavior splitBehavior) []span {
	// Mark every rune as delimiter or not, then build pieces.
	type piece struct {
		start, end int
		delim      bool
	}
	var pieces []piece
	prev := 0
	for _, m := range matches {
		if m[0] > prev {
			pieces = append(pieces, piece{prev, m[0], false})
		}
		if m[1] > m[0] {
			pieces = append(pieces, piece{m[0], m[1], true})
		}
		prev = m[1]
	}
	if prev < len(s.text) {
		pieces = append(pieces, piece{prev, len(s.text), false})
	}
	var ranges [][2]int
	switch behavior {
	case splitRemoved:
		for _, p := range pieces {
			if !p.delim {
				ranges = append(ranges, [2]int{p.start, p.end})
			}
		}
	case splitIsolated:
		for _, p := range pieces {
			ranges = append(ranges, [2]int{p.start, p.end})
		}
	case splitContiguous:
		lastDelim := false
		for _, p := range pieces {
			n := len(ranges)
			if p.delim && lastDelim && ranges[n-1][1] == p.start {
				ranges[n-1][1] = p.end
				continue
			}
			ranges = append(ranges, [2]int{p.start, p.end})
			lastDelim = p.delim
		}
	case splitMergedWithPrevious:
		for _, p := range pieces {
			n := len(ranges)
			if p.delim && n > 0 && ranges[n-1][1] == p.start {
				ranges[n-1][1] = p.end
				continue
			}
			ranges = append(ranges, [2]int{p.start, p.end})
		}
	case splitMergedWithNext:
		pendingStart := -1
		for _, p := range pieces {
			if p.delim {
				if pendingStart >= 0 {
					ranges = append(ranges, [2]int{pendingStart, p.start})
				}
				pendingStart = p.start
				continue
			}
			if pendingStart >= 0 {
				ranges = append(ranges, [2]int{pendingStart, p.end})
				pendingStart = -1
			} else {
				ranges = append(ranges, [2]int{p.start, p.end})
			}
		}
		if pendingStart >= 0 {
			ranges = append(ranges, [2]int{pendingStart, len(s.text)})
		}
	}
	out := make([]span, 0, len(ranges))
	for _, r := range ranges {
		if r[1] > r[0] {
			out = append(out, s.sub(r[0], r[1]))
		}
	}
	return out
}
