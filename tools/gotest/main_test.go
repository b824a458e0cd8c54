package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A captured `go test -json` stream: a passing package, a package with a
// failing test, a skipped test with a reason, a hardware skip.
const stream = `{"Action":"start","Package":"blipflow/a"}
{"Action":"run","Package":"blipflow/a","Test":"TestOK"}
{"Action":"output","Package":"blipflow/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"blipflow/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"blipflow/a","Test":"TestOK"}
{"Action":"run","Package":"blipflow/a","Test":"TestS3"}
{"Action":"output","Package":"blipflow/a","Test":"TestS3","Output":"=== RUN   TestS3\n"}
{"Action":"output","Package":"blipflow/a","Test":"TestS3","Output":"    s3_test.go:12: no S3 server: run .ci/install-versitygw.sh\n"}
{"Action":"output","Package":"blipflow/a","Test":"TestS3","Output":"--- SKIP: TestS3 (0.00s)\n"}
{"Action":"skip","Package":"blipflow/a","Test":"TestS3"}
{"Action":"run","Package":"blipflow/a","Test":"TestAVX"}
{"Action":"output","Package":"blipflow/a","Test":"TestAVX","Output":"    k_test.go:9: hardware: no AVX-512 BF16 on this CPU\n"}
{"Action":"skip","Package":"blipflow/a","Test":"TestAVX"}
{"Action":"output","Package":"blipflow/a","Output":"PASS\n"}
{"Action":"output","Package":"blipflow/a","Output":"ok  \tblipflow/a\t0.01s\n"}
{"Action":"pass","Package":"blipflow/a"}
{"Action":"run","Package":"blipflow/b","Test":"TestBad"}
{"Action":"output","Package":"blipflow/b","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"blipflow/b","Test":"TestBad","Output":"    b_test.go:5: got 1, want 2\n"}
{"Action":"output","Package":"blipflow/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"blipflow/b","Test":"TestBad"}
{"Action":"output","Package":"blipflow/b","Output":"FAIL\n"}
{"Action":"output","Package":"blipflow/b","Output":"FAIL\tblipflow/b\t0.01s\n"}
{"Action":"fail","Package":"blipflow/b"}
`

func TestReport(t *testing.T) {
	var out strings.Builder
	sum, err := report(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "ok  \tblipflow/a\t0.01s\n    b_test.go:5: got 1, want 2\n--- FAIL: TestBad (0.00s)\nFAIL\nFAIL\tblipflow/b\t0.01s\n"
	if out.String() != want {
		t.Errorf("output:\n%q\nwant:\n%q", out.String(), want)
	}
	if !sum.failed {
		t.Error("a failed package was not noticed")
	}
	line := skipLine(sum.skips)
	if line != "skipped 2: a.TestAVX (hardware: no AVX-512 BF16 on this CPU); a.TestS3 (no S3 server: run .ci/install-versitygw.sh)" {
		t.Errorf("skip line %q", line)
	}
	if sum.skips[0].allowed() != true || sum.skips[1].allowed() != false {
		t.Errorf("allowed: %v", sum.skips)
	}
	if got := skipLine(nil); got != "skipped: none" {
		t.Errorf("no skips: %q", got)
	}
}

// TestRunStrict runs go test on a small module whose tests skip: the run
// passes and names the skips; -strict fails unless the skip is declared
// hardware-dependent.
func TestRunStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/skips\n\ngo 1.22\n")
	write("a_test.go", `package skips

import (
	"os"
	"testing"
)

func TestHardware(t *testing.T) { t.Skip("hardware: no such CPU feature") }

func TestServer(t *testing.T) {
	if os.Getenv("SKIPS_SERVER") == "" {
		t.Skip("no server")
	}
}
`)
	t.Setenv("GOFLAGS", "-mod=mod")
	for _, c := range []struct {
		strict, server bool
		code           int
		line           string
	}{
		{false, false, 0, "skipped 2: skips.TestHardware (hardware: no such CPU feature); skips.TestServer (no server)"},
		{true, false, 1, "skipped 2:"},
		{true, true, 0, "skipped 1: skips.TestHardware"},
	} {
		env := ""
		if c.server {
			env = "1"
		}
		t.Setenv("SKIPS_SERVER", env)
		var out, errOut strings.Builder
		code := run(dir, []string{"-count=1", "./..."}, c.strict, &out, &errOut)
		if code != c.code || !strings.Contains(out.String(), c.line) {
			t.Errorf("strict=%v server=%v: code %d, output:\n%s%s", c.strict, c.server, code, out.String(), errOut.String())
		}
	}
}
