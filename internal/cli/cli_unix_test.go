//go:build unix

package cli

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"testing"
)

// A command stopped by Ctrl-C exits 130 and prints no "context canceled".
func TestRunInterrupted(t *testing.T) {
	cmds := map[string]Command{
		"long": {Summary: "runs until interrupted", Run: func(ctx context.Context, _ []string, _ io.Writer) error {
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		}},
	}
	var out, errOut bytes.Buffer
	if code := run("prog", cmds, []string{"long"}, &out, &errOut); code != ExitInterrupted || errOut.Len() != 0 {
		t.Fatalf("code %d, stderr %q; want %d and nothing", code, errOut.String(), ExitInterrupted)
	}
}

// A command that drains and returns nil on SIGTERM (a worker) exits 0.
func TestRunCleanStopOnSignal(t *testing.T) {
	cmds := map[string]Command{
		"drain": {Summary: "stops cleanly", Run: func(ctx context.Context, _ []string, _ io.Writer) error {
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}},
	}
	if code := run("prog", cmds, []string{"drain"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("code %d, want 0", code)
	}
}
