package sharding

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxBraceExpansions bounds the names one pattern may expand to.
const MaxBraceExpansions = 1_000_000

// rangePattern matches the inside of a numeric brace range: "000..123".
var rangePattern = regexp.MustCompile(`^(-?\d+)\.\.(-?\d+)$`)

// ExpandBraces expands shell-style brace groups, as WebDataset shard names
// use them: "{000..123}" is a numeric range (zero padding of the bounds is
// kept: 000, 001, ... 123), "{a,b}" a list; groups may follow each other
// and lists may nest. Braces that form neither stay as they are. A pattern
// without braces expands to itself.
func ExpandBraces(pattern string) ([]string, error) {
	names, err := expand(pattern)
	if err != nil {
		return nil, fmt.Errorf("brace pattern %q: %w", pattern, err)
	}
	return names, nil
}

func expand(pattern string) ([]string, error) {
	open, close := braceGroup(pattern)
	if open < 0 {
		return []string{pattern}, nil
	}
	prefix, body, rest := pattern[:open], pattern[open+1:close], pattern[close+1:]
	var alternatives []string
	switch parts := splitTopLevel(body); {
	case len(parts) > 1:
		for _, part := range parts {
			names, err := expand(part)
			if err != nil {
				return nil, err
			}
			alternatives = append(alternatives, names...)
		}
	case rangePattern.MatchString(body):
		var err error
		if alternatives, err = numericRange(body); err != nil {
			return nil, err
		}
	default:
		// Not a group: keep the braces literally and expand what follows.
		tails, err := expand(rest)
		if err != nil {
			return nil, err
		}
		for i, tail := range tails {
			tails[i] = prefix + "{" + body + "}" + tail
		}
		return tails, nil
	}
	tails, err := expand(rest)
	if err != nil {
		return nil, err
	}
	if len(alternatives)*len(tails) > MaxBraceExpansions {
		return nil, fmt.Errorf("more than %d names", MaxBraceExpansions)
	}
	names := make([]string, 0, len(alternatives)*len(tails))
	for _, alt := range alternatives {
		for _, tail := range tails {
			names = append(names, prefix+alt+tail)
		}
	}
	return names, nil
}

// braceGroup returns the positions of the first '{' and its matching '}',
// or -1, -1.
func braceGroup(s string) (int, int) {
	open, depth := -1, 0
	for i, c := range s {
		switch c {
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth > 0 {
				depth--
				if depth == 0 {
					return open, i
				}
			}
		}
	}
	return -1, -1
}

// splitTopLevel splits s at the commas outside nested braces.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// numericRange expands "lo..hi" (either order), zero-padded to the width
// of a bound written with a leading zero.
func numericRange(body string) ([]string, error) {
	m := rangePattern.FindStringSubmatch(body)
	lo, err := strconv.Atoi(m[1])
	if err != nil {
		return nil, fmt.Errorf("range {%s}: %w", body, err)
	}
	hi, err := strconv.Atoi(m[2])
	if err != nil {
		return nil, fmt.Errorf("range {%s}: %w", body, err)
	}
	width := 0
	for _, bound := range m[1:3] {
		digits := strings.TrimPrefix(bound, "-")
		if len(digits) > 1 && digits[0] == '0' {
			width = max(width, len(bound))
		}
	}
	step := 1
	if hi < lo {
		step = -1
	}
	count := (hi-lo)*step + 1
	if count > MaxBraceExpansions {
		return nil, fmt.Errorf("range {%s}: more than %d names", body, MaxBraceExpansions)
	}
	names := make([]string, 0, count)
	for n := lo; ; n += step {
		names = append(names, fmt.Sprintf("%0*d", width, n))
		if n == hi {
			return names, nil
		}
	}
}
