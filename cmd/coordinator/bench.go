package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"

	"blipflow/pipeline/bench"
	"blipflow/pipeline/metrics"
)

func init() {
	commands["bench"] = command{summary: "measure the plumbing's images/s with the nop model", run: runBench}
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg bench.Config
	fs.IntVar(&cfg.Images, "images", 1000, "generated images per run")
	size := fs.String("size", "256x256", "image size WIDTHxHEIGHT")
	fs.IntVar(&cfg.ShardSize, "shard-size", 100, "images per shard")
	fs.IntVar(&cfg.Workers, "workers", 1, "in-process workers")
	fs.IntVar(&cfg.BatchSize, "batch-size", 16, "images per model call")
	fs.IntVar(&cfg.Concurrency, "concurrency", 2, "shards per worker at once")
	procs := fs.String("procs", strconv.Itoa(runtime.NumCPU()), "comma-separated GOMAXPROCS values, one table row each")
	runs := fs.Int("runs", 1, "runs per row (the best counts)")
	fs.StringVar(&cfg.Dir, "dir", "", "work folder (default: a temporary folder, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := fmt.Sscanf(*size, "%dx%d", &cfg.Width, &cfg.Height); err != nil {
		return fmt.Errorf("--size %q: want WIDTHxHEIGHT", *size)
	}
	var procList []int
	for _, p := range strings.Split(*procs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return fmt.Errorf("--procs %q: want positive integers", *procs)
		}
		procList = append(procList, n)
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "blipflow-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	fmt.Fprintf(os.Stderr, "generating %d %s images...\n", cfg.Images, *size)
	if err := bench.Prepare(ctx, cfg); err != nil {
		return err
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cores\tgomaxprocs\tworkers\tbatch\timages\tshards\tseconds\timages/s\tread ms\tdecode ms\tpreprocess ms\tmodel ms/batch\twrite ms/shard\t")
	run := 0
	for _, p := range procList {
		runtime.GOMAXPROCS(p)
		var best bench.Result
		for range max(*runs, 1) {
			res, err := bench.Run(ctx, cfg, run)
			run++
			if err != nil {
				return err
			}
			if best.Images == 0 || res.ImagesPerSecond() > best.ImagesPerSecond() {
				best = res
			}
		}
		s := best.StageMS
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
			best.Cores, best.GOMAXPROCS, cfg.Workers, cfg.BatchSize, best.Images, best.Shards, best.Elapsed.Seconds(),
			best.ImagesPerSecond(), s[metrics.StageRead], s[metrics.StageDecode], s[metrics.StagePreprocess],
			s[metrics.StageModel], s[metrics.StageWrite])
	}
	return tw.Flush()
}
