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

// boundHeapGrowth paces the collector to the heap that is live now (the
// model's weights when they live on the heap: converted 16-bit or random
// ones), so garbage never grows to a second copy of the weights: the next
// collection comes after about headroom bytes of allocation, whatever the
// live heap grows to later (a batch's KV cache). It sets GOGC rather than
// a memory limit near the live heap: with such a limit the collector runs
// back to back once a KV cache is allocated, returning freed pages and
// faulting them back. Measured on blip2-opt-2.7b bf16 (worker bench,
// 2026-11-30): a batch-32 decode step took 911 ms under a limit 512 MiB over
// the loaded heap, 502-525 ms paced by GOGC; peak RSS 8.33-8.36 GB with 64
// MiB of headroom (GOGC=1 over 7.7 GB; 1-2% slower stages than at 2), 8.50-
// 8.53 GB at GOGC=2, 8.55-8.62 GB at 256 MiB. It does nothing when GOGC or
// GOMEMLIMIT is set.
func boundHeapGrowth() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	const headroom = 64 << 20
	debug.SetGCPercent(gcPercentFor(ms.HeapAlloc, headroom))
}

// gcPercentFor is the GOGC that lets a heap of live bytes grow by about
// headroom before the next collection: at least 1, at most 25.
func gcPercentFor(live, headroom uint64) int {
	if live == 0 {
		return 25
	}
	return int(min(25, max(1, headroom*100/live)))
}
