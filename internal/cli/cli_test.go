package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	cmds := map[string]Command{
		"ok": {Summary: "succeeds", Run: func(_ context.Context, args []string, w io.Writer) error {
			_, err := io.WriteString(w, strings.Join(args, ","))
			return err
		}},
		"fail": {Summary: "fails", Run: func(context.Context, []string, io.Writer) error { return errors.New("boom") }},
	}
	cases := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, 2, "", "usage: prog"},
		{[]string{"help"}, 0, "", "succeeds"},
		{[]string{"nope"}, 2, "", `unknown command "nope"`},
		{[]string{"ok", "a", "b"}, 0, "a,b", ""},
		{[]string{"fail"}, 1, "", "prog fail: boom"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if code := run("prog", cmds, c.args, &out, &errOut); code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errOut.String(), c.stderr) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", c.args, code, out.String(), errOut.String())
		}
	}
}

func TestParse(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("caption", flag.ContinueOnError)
	fs.SetOutput(&out)
	fs.Int("max-new-tokens", 0, "most new tokens")
	err := Parse(fs, []string{"--max-new-tokens", "abc"})
	if err == nil || !strings.Contains(err.Error(), `invalid value "abc" for flag -max-new-tokens`) || out.Len() != 0 {
		t.Fatalf("error %v, printed %q; want the error only", err, out.String())
	}
	err = Parse(fs, []string{"-h"})
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-max-new-tokens int") {
		t.Fatalf("-h: %v, printed %q", err, out.String())
	}
}
