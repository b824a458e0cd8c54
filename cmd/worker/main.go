// Command worker runs BLIP-2 on images: one-off commands (caption, embed,
// search, match, tokenize, preprocess, pull, bench) and the pipeline worker
// that pulls shards from NATS JetStream (run).
package main

import (
	"context"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"blipflow/internal/cli"
)

// command is one subcommand of the worker binary.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

// commands lists the subcommands. Each lives in its own file and registers
// itself here.
var commands = map[string]command{}

func main() {
	if os.Getenv("GOGC") == "" {
		// Weights converted from 16-bit checkpoints (or random ones) live on
		// the heap; the default GOGC=100 would let garbage grow to their
		// size again before collecting. Keep peak memory near the weights.
		debug.SetGCPercent(25)
	}
	cmds := make(map[string]cli.Command, len(commands))
	for name, c := range commands {
		cmds[name] = cli.Command{Summary: c.summary, Run: c.run}
	}
	cli.Main("worker", cmds)
}

// boundHeapGrowth caps the heap at what is live now (the model's weights
// when they live on the heap: converted 16-bit or random ones) plus
// headroom, so garbage never grows to a second copy of the weights. It does
// nothing when GOMEMLIMIT is set.
func boundHeapGrowth() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// The limit counts all the runtime's memory (heap, stacks, metadata),
	// not just live objects. A batch's activations fit in 512 MiB several
	// times over; with much less the collector runs almost continuously and
	// freed pages are returned and faulted back (measured: a blip2-opt-2.7b
	// vision encoder 2.1x slower at 256 MiB of live-heap headroom).
	const headroom = 512 << 20
	debug.SetMemoryLimit(int64(ms.Sys-ms.HeapReleased) + headroom)
}
