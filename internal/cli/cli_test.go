package cli

import (
	"bytes"
	"context"
	"errors"
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
