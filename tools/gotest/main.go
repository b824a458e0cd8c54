// Command gotest runs `go test -json` with the given arguments and prints
// what plain `go test` prints (a line per package, the output of failed
// tests and of builds that failed), then one line naming every skipped
// test with its reason. `go test` hides skips; this does not.
//
// With -strict (CI) any skip fails the run, except skips whose message
// starts with HardwarePrefix: tests that cannot run on this machine's
// hardware (a CPU feature a kernel needs, an accelerator) and say so with
// t.Skip("hardware: ..."). Everything else a test needs (OpenBLAS, an S3
// server, Chromium) CI installs, so a skip there means something was not
// tested.
//
//	go run ./tools/gotest ./...          # as go test, plus the skipped line
//	go run ./tools/gotest -strict ./...  # CI: also fail on any skip
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// HardwarePrefix starts the skip message of a test that needs hardware
// this machine lacks; such skips are allowed under -strict.
const HardwarePrefix = "hardware:"

// event is one record of `go test -json` (test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

// skip is one skipped test with its reason.
type skip struct {
	Name, Reason string
}

func (s skip) allowed() bool { return strings.HasPrefix(s.Reason, HardwarePrefix) }

// summary is what a run found.
type summary struct {
	skips  []skip
	failed bool
}

// report reads test2json events from r and writes go test's usual output to w.
func report(r io.Reader, w io.Writer) (summary, error) {
	var sum summary
	buffered := map[string][]string{} // package + test: its output lines
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, string(line)) // not an event: go's own messages
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			sum.failed = true
		case e.Action == "output" && e.Test == "":
			if !packageNoise(e.Output) {
				fmt.Fprint(w, e.Output)
			}
		case e.Action == "output":
			buffered[key] = append(buffered[key], e.Output)
		case e.Action == "fail" && e.Test != "":
			for _, out := range buffered[key] {
				if !strings.HasPrefix(out, "=== ") {
					fmt.Fprint(w, out)
				}
			}
			delete(buffered, key)
		case e.Action == "fail":
			sum.failed = true
		case e.Action == "skip" && e.Test != "":
			sum.skips = append(sum.skips, skip{Name: shortPackage(e.Package) + "." + e.Test, Reason: skipReason(buffered[key])})
			delete(buffered, key)
		case e.Action == "pass":
			delete(buffered, key)
		}
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("reading go test output: %w", err)
	}
	sort.Slice(sum.skips, func(i, j int) bool { return sum.skips[i].Name < sum.skips[j].Name })
	return sum, nil
}

// packageNoise reports package-level lines plain go test does not print.
func packageNoise(out string) bool {
	t := strings.TrimSpace(out)
	return t == "PASS" || t == "testing: warning: no tests to run" || strings.HasPrefix(out, "=== ")
}

// skipReason finds the message a skipped test logged: the lines after its
// "file_test.go:NN: " prefix, without the --- SKIP line.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		if _, after, ok := strings.Cut(t, ".go:"); ok {
			if _, rest, ok := strings.Cut(after, ": "); ok {
				t = rest
			}
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "no reason given"
	}
	return strings.Join(msg, " ")
}

// shortPackage drops the module path's first element (blipflow/x -> x).
func shortPackage(pkg string) string {
	if _, rest, ok := strings.Cut(pkg, "/"); ok {
		return rest
	}
	return pkg
}

// skipLine is the one line naming the skipped tests.
func skipLine(skips []skip) string {
	if len(skips) == 0 {
		return "skipped: none"
	}
	parts := make([]string, len(skips))
	for i, s := range skips {
		parts[i] = fmt.Sprintf("%s (%s)", s.Name, s.Reason)
	}
	return fmt.Sprintf("skipped %d: %s", len(skips), strings.Join(parts, "; "))
}

func main() {
	fs := flag.NewFlagSet("gotest", flag.ContinueOnError)
	strict := fs.Bool("strict", false, "fail when a test was skipped, unless its message starts with "+HardwarePrefix)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./tools/gotest [-strict] [go test flags and packages]")
		fs.PrintDefaults()
	}
	// Our flag comes first; everything else goes to go test.
	args := os.Args[1:]
	if len(args) > 0 && (args[0] == "-strict" || args[0] == "--strict") {
		*strict = true
		args = args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fs.Usage()
		return
	}
	os.Exit(run("", args, *strict, os.Stdout, os.Stderr))
}

// run runs go test -json args in dir (empty: here) and returns the exit
// status.
func run(dir string, args []string, strict bool, stdout, stderr io.Writer) int {
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "gotest:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "gotest:", err)
		return 2
	}
	sum, readErr := report(out, stdout)
	waitErr := cmd.Wait()
	if readErr != nil {
		fmt.Fprintln(stderr, "gotest:", readErr)
		return 2
	}
	fmt.Fprintln(stdout, skipLine(sum.skips))
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(waitErr, &exit):
		code = exit.ExitCode()
	case waitErr != nil:
		fmt.Fprintln(stderr, "gotest:", waitErr)
		code = 2
	case sum.failed:
		code = 1
	}
	if strict && code == 0 {
		var bad []string
		for _, s := range sum.skips {
			if !s.allowed() {
				bad = append(bad, s.Name)
			}
		}
		if len(bad) > 0 {
			fmt.Fprintf(stdout, "FAIL: -strict: %d tests skipped without the %q prefix: %s\n", len(bad), HardwarePrefix, strings.Join(bad, ", "))
			code = 1
		}
	}
	return code
}
