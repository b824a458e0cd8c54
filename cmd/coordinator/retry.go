package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"blipflow/model/engine"
	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/worker"
)

func init() {
	commands["retry"] = command{summary: "re-run the failed images of a finished job and replace their rows", run: runRetry}
}

// localFlags select and size an embedded pipeline (--local) for the
// commands that work on an existing job.
type localFlags struct {
	local       bool
	output      string
	storeDir    string
	model       string
	workers     int
	batchSize   int
	concurrency int
}

// register adds the flags; withWorkers adds those of in-process workers.
func (f *localFlags) register(fs *flag.FlagSet, withWorkers bool) {
	fs.BoolVar(&f.local, "local", false, "read the job state that 'coordinator run --local' keeps under --output (or --store-dir) instead of asking --nats")
	fs.StringVar(&f.output, "output", node.EnvString("BLIPFLOW_OUTPUT", ""), "with --local: the job's output location, to find its store (env BLIPFLOW_OUTPUT)")
	fs.StringVar(&f.storeDir, "store-dir", node.EnvString("BLIPFLOW_STORE_DIR", ""), "with --local: JetStream folder of the job (default OUTPUT/.blipflow/nats for a local output)")
	if !withWorkers {
		return
	}
	fs.StringVar(&f.model, "model", node.EnvString("BLIPFLOW_MODEL", ""), "with --local: checkpoint folder or model name, or nop (env BLIPFLOW_MODEL)")
	fs.IntVar(&f.workers, "workers", node.EnvInt("BLIPFLOW_WORKERS", 1), "with --local: in-process workers (env BLIPFLOW_WORKERS)")
	fs.IntVar(&f.batchSize, "batch-size", node.EnvInt("BLIPFLOW_BATCH_SIZE", 8), "with --local: images per model call (env BLIPFLOW_BATCH_SIZE)")
	fs.IntVar(&f.concurrency, "concurrency", node.EnvInt("BLIPFLOW_CONCURRENCY", 2), "with --local: shards each worker processes at once (env BLIPFLOW_CONCURRENCY)")
}

// withCoordinator connects to the job's NATS (the --nats server, or with
// --local an embedded one on the job's store, with in-process workers
// when the flags name a model) and calls fn with a coordinator.
func withCoordinator(ctx context.Context, name string, nf *node.Flags, lf *localFlags, log *slog.Logger, fn func(*coordinator.Coordinator) error) error {
	url := nf.NATSURL
	if lf.local {
		if lf.output == "" && lf.storeDir == "" {
			return errors.New("--local needs the job's --output or --store-dir")
		}
		storeDir, err := (&runFlags{output: lf.output, storeDir: lf.storeDir}).localStoreDir()
		if err != nil {
			return err
		}
		if _, err := os.Stat(storeDir); err != nil {
			return fmt.Errorf("--local: no job store at %s: %w", storeDir, err)
		}
		srv, err := natsembed.Start(natsembed.Config{StoreDir: storeDir})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url = srv.URL()
	}
	conn, err := node.DialNow(ctx, url, "blipflow-coordinator-"+name, nf.Queue, nf.Jobs, dialTimeout, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	coord, err := coordinator.New(coordinator.Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: nf.OpenStore(), Log: log})
	if err != nil {
		return err
	}
	if !lf.local || lf.model == "" {
		return fn(coord)
	}
	model, err := pipeline.LoadModel(ctx, lf.model, localModels(engine.Options{}))
	if err != nil {
		return err
	}
	if closer, ok := model.(io.Closer); ok {
		defer closer.Close()
	}
	workCtx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWorkers(); wg.Wait() }()
	for i := range max(lf.workers, 1) {
		w, err := worker.New(worker.Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, Model: model,
			OpenStore: nf.OpenStore(), Name: fmt.Sprintf("local-%d", i), BatchSize: lf.batchSize,
			Concurrency: lf.concurrency, Log: log})
		if err != nil {
			return err
		}
		wg.Go(func() { _ = w.Run(workCtx) })
	}
	log.Info("running locally", "model", model.ID(), "workers", max(lf.workers, 1))
	return fn(coord)
}

func runRetry(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("retry", flag.ContinueOnError)
	var (
		nf node.Flags
		lf localFlags
	)
	nf.Register(fs, "")
	lf.register(fs, true)
	showProgress := fs.Bool("progress", true, "show progress on stderr")
	job, err := jobCommand(fs, &lf, "coordinator retry [flags] JOB",
		"Re-run the images of a finished job whose rows carry an error, and replace their rows.\n\n"+jobHelp, args)
	if err != nil {
		return err
	}
	if lf.local && lf.model == "" {
		return errors.New("--local needs --model (a checkpoint folder, a model name, or nop) for the re-run")
	}
	show := newProgress(os.Stderr, isTerminal(os.Stderr), *showProgress)
	log, err := nf.Logger(show)
	if err != nil {
		return err
	}
	show.setLogger(log)
	var (
		m     coordinator.Manifest
		round jobstate.RetryRound
	)
	err = withCoordinator(ctx, "retry", &nf, &lf, log, func(coord *coordinator.Coordinator) error {
		var err error
		if job, err = latestJob(ctx, &nf, &lf, job); err != nil {
			return err
		}
		m, round, err = coord.Retry(ctx, job, show.update)
		return err
	})
	show.finish()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "interrupted: run the same command again to resume the retry round")
	}
	if errors.Is(err, coordinator.ErrNothingToRetry) {
		fmt.Fprintf(stdout, "job %s: nothing to retry (no failed images)\n", job)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "job %s: retry round %d re-ran %d images: %d fixed, %d still failing\n",
		job, round.Round, round.Images, round.Fixed, round.Failing)
	return report(stdout, m, show.stats())
}

// dialTimeout bounds how long a command on an existing job waits for
// NATS to answer.
const dialTimeout = 5 * time.Second
