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

	"blipflow/pipeline/scalebench"
)

func init() {
	commands["scale-bench"] = command{summary: "measure coordination at scale: NATS, coordinator and workers on a synthetic listing of N one-pixel images", run: runScaleBench}
}

func runScaleBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("scale-bench", flag.ContinueOnError)
	images := fs.String("images", "10000,100000", "comma-separated image counts, one table row each")
	shardSize := fs.Int("shard-size", 100, "images per shard")
	var rc scalebench.RoleConfig
	fs.IntVar(&rc.Workers, "workers", 2, "in-process workers of the worker process")
	fs.IntVar(&rc.BatchSize, "batch-size", 64, "images per nop model call")
	fs.IntVar(&rc.Concurrency, "concurrency", 4, "shards each worker processes at once")
	role := fs.String("role", "", "internal: run one process of the benchmark (nats, workers or coordinator)")
	fs.StringVar(&rc.NATS, "nats", "", "internal: NATS URL of a role")
	fs.StringVar(&rc.StoreDir, "store-dir", "", "internal: JetStream folder of the nats role")
	fs.IntVar(&rc.Port, "port", 0, "internal: client port of the nats role")
	fs.StringVar(&rc.Job, "job", "scale", "internal: job id of the roles")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rc.ShardSize = *shardSize
	switch *role {
	case "nats":
		return scalebench.RunNATS(ctx, rc, stdout)
	case "workers":
		return scalebench.RunWorkers(ctx, rc, stdout)
	case "coordinator":
		n, err := strconv.Atoi(*images)
		if err != nil {
			return fmt.Errorf("--images %q: %w", *images, err)
		}
		rc.Images = n
		return scalebench.RunCoordinator(ctx, rc, stdout)
	case "":
	default:
		return fmt.Errorf("--role %q: want nats, workers or coordinator", *role)
	}

	var counts []int
	for _, s := range strings.Split(*images, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--images %q: want positive integers", *images)
		}
		counts = append(counts, n)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cores %d; nop model, one-pixel images listed from memory, %d workers (batch %d, %d shards each at once) in one process\n",
		runtime.NumCPU(), rc.Workers, rc.BatchSize, rc.Concurrency)
	// Fixed-width columns, so that each row prints as soon as it is measured.
	const row = "%9v %7v %7v %9v %9v %8v %8v %9v %10v %9v %7v %8v %9v %7v %7v %8v\n"
	fmt.Fprintf(stdout, row, "images", "shards", "plan s", "publish s", "publish/s", "run s", "shards/s", "images/s",
		"coord CPU%", "coord MB", "NATS s", "NATS MB", "workers s", "status", "scan", "cmd")
	for _, n := range counts {
		dir, err := scalebench.TempDir()
		if err != nil {
			return err
		}
		res, err := scalebench.Run(ctx, scalebench.Config{
			Images: n, ShardSize: *shardSize, Workers: rc.Workers, BatchSize: rc.BatchSize, Concurrency: rc.Concurrency,
			Dir: dir, Exe: exe, Stderr: os.Stderr,
		})
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("scale-bench with %d images: %w", n, err)
		}
		f := func(format string, v float64) string { return fmt.Sprintf(format, v) }
		fmt.Fprintf(stdout, row, res.Images, res.Shards, f("%.2f", res.PlanSeconds), f("%.2f", res.PublishSeconds),
			f("%.0f", res.PublishRate()), f("%.1f", res.RunSeconds), f("%.0f", res.ShardsPerSecond()),
			f("%.0f", res.ImagesPerSecond()), f("%.1f", res.FollowCorePercent()), f("%.0f", res.CoordPeakMB),
			f("%.1f", res.NATSCPU), f("%.0f", res.NATSPeakMB), f("%.1f", res.WorkersCPU),
			f("%.0fms", res.StatusMS), f("%.0fms", res.ScanMS), f("%.0fms", res.StatusCmdMS))
	}
	fmt.Fprintln(stdout, "plan: list and cut alone; publish: the coordinator's list, cut and publish; run: publish start to the last shard done;")
	fmt.Fprintln(stdout, "coord CPU%: of one core while following; NATS s, workers s: CPU seconds; MB: peak RSS;")
	fmt.Fprintln(stdout, "status: coordinator status (the stored summary); scan: every shard's state read; cmd: a `coordinator status` process")
	return nil
}
