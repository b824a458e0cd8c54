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

// Main runs the command named by os.Args[1] and exits: 0 on success, 1 when
// the command fails, 2 for a usage error.
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.Run(ctx, args[1:], stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s %s: %s\n", program, args[0], redact.Error(err))
		return 1
	}
	return 0
}
