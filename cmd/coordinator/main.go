// Command coordinator runs blipflow jobs: it lists an input, cuts it into
// shards, publishes them to NATS JetStream for the workers and follows the
// job to its manifest. With --local it runs the whole job in one process
// (embedded NATS, in-process workers).
package main

import (
	"context"
	"io"

	"blipflow/internal/cli"
)

// command is one subcommand of the coordinator binary.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

// commands lists the subcommands; each lives in its own file.
var commands = map[string]command{}

func main() {
	cmds := make(map[string]cli.Command, len(commands))
	for name, c := range commands {
		cmds[name] = cli.Command{Summary: c.summary, Run: c.run}
	}
	cli.Main("coordinator", cmds)
}
