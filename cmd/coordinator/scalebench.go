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
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "images\tshards\tplan s\tpublish s\tpublish shards/s\trun s\tshards/s\timages/s\tcoord CPU % following\tcoord peak MB\tNATS CPU s\tNATS peak MB\tworkers CPU s\tstatus ms\tfull scan ms\t`status` cmd ms\t")
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
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.2f\t%.0f\t%.1f\t%.0f\t%.0f\t%.1f\t%.0f\t%.1f\t%.0f\t%.1f\t%.0f\t%.0f\t%.0f\t\n",
			res.Images, res.Shards, res.PlanSeconds, res.PublishSeconds, res.PublishRate(), res.RunSeconds,
			res.ShardsPerSecond(), res.ImagesPerSecond(), res.FollowCorePercent(), res.CoordPeakMB,
			res.NATSCPU, res.NATSPeakMB, res.WorkersCPU, res.StatusMS, res.ScanMS, res.StatusCmdMS)
		tw.Flush()
	}
	return tw.Flush()
}
