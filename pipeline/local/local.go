// Package local runs a whole job in one process: an embedded NATS server
// with JetStream, the coordinator and a few workers sharing one model. It is
// `coordinator run --local` and the plumbing benchmark.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/worker"
	"blipflow/storage"
)

// Config describes a local run.
type Config struct {
	// StoreDir keeps the embedded server's JetStream data; running again
	// with the same folder resumes the job.
	StoreDir string
	// Request is the job.
	Request coordinator.Request
	// Model is shared by the workers.
	Model pipeline.Model
	// Workers is the number of in-process workers (1).
	Workers int
	// Worker is the template of each worker's configuration (batch size,
	// concurrency...); the connection, model and stores are filled in.
	Worker worker.Config
	// Queue and Jobs configure the streams and the job state bucket.
	Queue queue.Config
	Jobs  jobstate.Config
	// Storage holds the S3 settings for s3:// inputs and outputs.
	Storage storage.Config
	// CoordinatorMetrics receives the coordinator's metrics (may be nil).
	CoordinatorMetrics *metrics.Coordinator
	// OnConnected, if set, is called once the queue is up.
	OnConnected func(*node.Conn)
	// OnStatus, if set, receives job snapshots while it runs.
	OnStatus func(coordinator.Status)
	// Log receives structured logs (nil: slog.Default()).
	Log *slog.Logger
}

// Run runs the job to completion and returns its manifest. A job that
// finished with dead-lettered shards still returns its manifest; check
// Manifest.Failed.
func Run(ctx context.Context, cfg Config) (coordinator.Manifest, error) {
	if cfg.Model == nil {
		return coordinator.Manifest{}, errors.New("local run: no model")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	srv, err := natsembed.Start(natsembed.Config{StoreDir: cfg.StoreDir})
	if err != nil {
		return coordinator.Manifest{}, err
	}
	defer srv.Shutdown()
	cfg.Log.Debug("embedded nats started", "url", srv.URL(), "store", cfg.StoreDir)

	conn, err := node.Dial(ctx, srv.URL(), "blipflow-local", cfg.Queue, cfg.Jobs, cfg.Log)
	if err != nil {
		return coordinator.Manifest{}, err
	}
	defer conn.NC.Close()
	if cfg.OnConnected != nil {
		cfg.OnConnected(conn)
	}
	open := func(ctx context.Context, location string) (storage.Store, error) {
		return storage.Open(ctx, location, cfg.Storage)
	}
	coord, err := coordinator.New(coordinator.Config{
		JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: open,
		Metrics: cfg.CoordinatorMetrics, Log: cfg.Log,
	})
	if err != nil {
		return coordinator.Manifest{}, err
	}
	req := cfg.Request
	if req.Checker == nil {
		req.Checker = cfg.Model
	}
	spec, err := coord.Submit(ctx, req)
	if err != nil {
		return coordinator.Manifest{}, err
	}

	workers := make([]*worker.Worker, cfg.Workers)
	for i := range workers {
		wcfg := cfg.Worker
		wcfg.JS, wcfg.Queue, wcfg.Jobs, wcfg.Model, wcfg.OpenStore = conn.JS, conn.Queue, conn.Jobs, cfg.Model, open
		wcfg.Name = fmt.Sprintf("local-%d", i)
		wcfg.Log = cfg.Log
		if workers[i], err = worker.New(wcfg); err != nil {
			return coordinator.Manifest{}, err
		}
	}
	workCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		wg.Go(func() { errs[i] = w.Run(workCtx) })
	}

	st, err := coord.Follow(ctx, spec.ID, cfg.OnStatus)
	stopWorkers()
	wg.Wait()
	if err != nil {
		return coordinator.Manifest{}, fmt.Errorf("job %s: %w", spec.ID, err)
	}
	if err := errors.Join(errs...); err != nil {
		return coordinator.Manifest{}, fmt.Errorf("job %s workers: %w", spec.ID, err)
	}
	return coord.Finish(ctx, st)
}
