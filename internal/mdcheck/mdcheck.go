// Package mdcheck finds Markdown that renders other than its author meant:
// a code fence that never closes (swallowing the rest of the file) and a
// section heading that sits inside a code block (so it renders as code).
package mdcheck

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Problem is one defect, at a 1-based line.
type Problem struct {
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: %s", p.Line, p.Msg) }

// fence is an open fenced code block.
type fence struct {
	char byte // '`' or '~'
	n    int  // length of the opening run
	line int
	info string
}

// Check reads a Markdown document and reports its unclosed fences and the
// headings (## and deeper; a single # is a shell comment as often as a
// title) that fall inside fenced code. Fences follow CommonMark: up to
// three spaces of indentation, three or more backticks or tildes, closed by
// a run of the same character at least as long with nothing after it.
func Check(r io.Reader) ([]Problem, error) {
	var problems []Problem
	var open *fence
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		char, run, rest, ok := fenceRun(line)
		switch {
		case open == nil && ok && !(char == '`' && strings.Contains(rest, "`")):
			open = &fence{char: char, n: run, line: n, info: strings.TrimSpace(rest)}
		case open != nil && ok && char == open.char && run >= open.n && strings.TrimSpace(rest) == "":
			open = nil
		case open != nil && isSectionHeading(line):
			problems = append(problems, Problem{n, fmt.Sprintf("heading %q is inside the code block opened at line %d", strings.TrimSpace(line), open.line)})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if open != nil {
		desc := "code fence"
		if open.info != "" {
			desc += " (" + open.info + ")"
		}
		problems = append(problems, Problem{open.line, desc + " is never closed: the rest of the file renders as code"})
	}
	return problems, nil
}

// fenceRun reports whether line is a fence: its character, the length of
// the run and what follows the run.
func fenceRun(line string) (char byte, run int, rest string, ok bool) {
	indent := 0
	for indent < len(line) && line[indent] == ' ' {
		indent++
	}
	if indent > 3 || indent == len(line) {
		return 0, 0, "", false
	}
	char = line[indent]
	if char != '`' && char != '~' {
		return 0, 0, "", false
	}
	i := indent
	for i < len(line) && line[i] == char {
		i++
	}
	run = i - indent
	if run < 3 {
		return 0, 0, "", false
	}
	return char, run, line[i:], true
}

// isSectionHeading reports whether line is an ATX heading of level 2 to 6.
func isSectionHeading(line string) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	level := 0
	for level < len(t) && t[level] == '#' {
		level++
	}
	return level >= 2 && level <= 6 && level < len(t) && t[level] == ' ' && strings.TrimSpace(t[level:]) != ""
}
