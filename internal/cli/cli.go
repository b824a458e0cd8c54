// Package cli runs a binary made of subcommands: it prints the usage,
// dispatches to the named command with a context cancelled on SIGINT and
// SIGTERM, and turns errors into exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
	"syscall"

	"blipflow/internal/redact"
)

// Command is one subcommand.
type Command struct {
	Summary string
	Run     func(ctx context.Context, args []string, stdout io.Writer) error
}

// Usage writes the list of commands.
func Usage(w io.Writer, program string, commands map[string]Command) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags] [args]\n\ncommands:\n", program)
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].Summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", program)
}

// Main runs the command named by os.Args[1] and exits: 0 on success (also
// after a clean stop on a signal), 1 when the command fails, 2 for a usage
// error, 130 (143) when a SIGINT (SIGTERM) made it fail.
func Main(program string, commands map[string]Command) {
	os.Exit(run(program, commands, os.Args[1:], os.Stdout, os.Stderr))
}

func run(program string, commands map[string]Command, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		Usage(stderr, program, commands)
		if len(args) < 1 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", program, args[0])
		Usage(stderr, program, commands)
		return 2
	}
	ctx, sig, stop := notifyContext()
	defer stop()
	err := cmd.Run(ctx, args[1:], stdout)
	switch {
	case err == nil:
		return 0 // a command that drained and stopped cleanly on a signal
	case errors.Is(err, flag.ErrHelp):
		return 0
	case ctx.Err() != nil:
		// Stopped by a signal: the shell convention is 128+signal. The
		// command has said what to do next.
		if !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "%s %s: %s\n", program, args[0], redact.Error(err))
		}
		if sig() == syscall.SIGTERM {
			return ExitTerminated
		}
		return ExitInterrupted
	default:
		fmt.Fprintf(stderr, "%s %s: %s\n", program, args[0], redact.Error(err))
		return 1
	}
}

// notifyContext returns a context cancelled by the first SIGINT or
// SIGTERM, and which signal it was. After the first, the signals get their
// default action again: a second Ctrl-C ends the process at once.
func notifyContext() (context.Context, func() os.Signal, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value
	go func() {
		select {
		case s := <-ch:
			got.Store(s)
			signal.Stop(ch)
			cancel()
		case <-ctx.Done():
		}
	}()
	sig := func() os.Signal {
		s, _ := got.Load().(os.Signal)
		return s
	}
	return ctx, sig, func() { signal.Stop(ch); cancel() }
}

// ExitTerminated is the exit status of a command that failed after a
// SIGTERM (128 + SIGTERM).
const ExitTerminated = 143

// ExitInterrupted is the exit status of a command that failed after a
// SIGINT (128 + SIGINT, as shells report it).
const ExitInterrupted = 130

// Parse parses args with fs without printing anything for a bad flag: the
// error, which names the flag and the value, is returned for the caller to
// print once (Main does), with a pointer to -h. For -h it prints fs.Usage
// and returns flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		if usage != nil {
			usage()
		} else {
			fs.PrintDefaults()
		}
		return err
	case err != nil:
		return fmt.Errorf("%w (-h lists the flags)", err)
	}
	return nil
}
