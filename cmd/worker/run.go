package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"blipflow/internal/redact"
	"blipflow/model/engine"
	"blipflow/model/generate"
	"blipflow/pipeline"
	"blipflow/pipeline/fetch"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/node"
	"blipflow/pipeline/worker"
)

func init() {
	commands["run"] = command{summary: "pull shards from NATS JetStream and process them (pipeline worker)", run: runWorker}
}

// batchedModels says how `worker run` loads --model values other than the
// built-in nop model: BLIP-2 checkpoints (a folder or a Hugging Face name),
// generating with the checkpoint's defaults, batched as the batching flags
// say (continuous batching on a GPU), with the device metrics on reg.
func batchedModels(rt *engine.Options, bf *batchingFlags, reg prometheus.Registerer, log *slog.Logger) (pipeline.ModelConfig, error) {
	l, err := bf.loader(rt, generate.Config{}, reg, log)
	return pipeline.ModelConfig{Checkpoint: l}, err
}

func runWorker(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	rt := runtimeFlags(fs)
	var bf batchingFlags
	bf.register(fs)
	var nf node.Flags
	nf.Register(fs, ":9090")
	modelName := fs.String("model", node.EnvString("BLIPFLOW_MODEL", ""), "checkpoint folder or model name, or nop (env BLIPFLOW_MODEL)")
	batchSize := fs.Int("batch-size", node.EnvInt("BLIPFLOW_BATCH_SIZE", 8), "images per model call (env BLIPFLOW_BATCH_SIZE)")
	concurrency := fs.Int("concurrency", node.EnvInt("BLIPFLOW_CONCURRENCY", 2), "shards processed at once (env BLIPFLOW_CONCURRENCY)")
	readers := fs.Int("readers", node.EnvInt("BLIPFLOW_READERS", 16), "concurrent image reads (env BLIPFLOW_READERS)")
	decoders := fs.Int("decoders", node.EnvInt("BLIPFLOW_DECODERS", 0), "decoding goroutines (0: one per CPU; env BLIPFLOW_DECODERS)")
	decodeBudget := fs.Int64("decode-budget", int64(node.EnvInt("BLIPFLOW_DECODE_BUDGET", worker.DefaultDecodeBudget)), "bytes all concurrent image decodes may hold, by their header's decode cost (env BLIPFLOW_DECODE_BUDGET)")
	drain := fs.Duration("drain-timeout", node.EnvDuration("BLIPFLOW_DRAIN_TIMEOUT", 20*time.Second), "on SIGTERM, time shards whose images are all processed may take to be written; the others are handed back at once (env BLIPFLOW_DRAIN_TIMEOUT)")
	retryDelay := fs.Duration("retry-delay", node.EnvDuration("BLIPFLOW_RETRY_DELAY", 2*time.Second), "base delay before a failed shard is retried, doubling per delivery (env BLIPFLOW_RETRY_DELAY)")
	name := fs.String("name", node.EnvString("BLIPFLOW_WORKER_NAME", ""), "worker name in logs and job state (default host-pid)")
	var fetchCfg fetch.Config
	fetchCfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *modelName == "" {
		return errors.New("--model is required (a checkpoint folder, a model name, or nop)")
	}
	log, err := nf.Logger(os.Stderr)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	models, err := batchedModels(rt, &bf, reg, log)
	if err != nil {
		return err
	}
	model, err := pipeline.LoadModel(ctx, *modelName, models)
	if err != nil {
		return err
	}
	if closer, ok := model.(io.Closer); ok {
		defer closer.Close()
	}

	wm := metrics.NewWorker(reg)
	var started atomic.Pointer[worker.Worker]
	ready := func() error {
		if w := started.Load(); w != nil {
			return w.Ready()
		}
		return errors.New("starting")
	}
	if nf.MetricsAddr != "" {
		srv, err := metrics.Serve(nf.MetricsAddr, reg, ready, log)
		if err != nil {
			return err
		}
		defer srv.Close(context.WithoutCancel(ctx))
		log.Info("serving metrics", "addr", srv.Addr())
	}

	// The worker retries store operations itself with the project's one
	// policy (logged, jittered, shard-aware); the S3 SDK makes one attempt
	// per call so that retries are never nested.
	nf.Storage.MaxRetries = -1
	conn, err := node.Dial(ctx, nf.NATSURL, "blipflow-worker", nf.Queue, nf.Jobs, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	w, err := worker.New(worker.Config{
		JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, Model: model, OpenStore: nf.OpenStore(),
		Name: *name, BatchSize: *batchSize, Concurrency: *concurrency, Readers: *readers, Decoders: *decoders, DecodeBudget: *decodeBudget,
		DrainTimeout: *drain, RetryDelay: *retryDelay, Fetch: fetchCfg, Metrics: wm, Log: log,
	})
	if err != nil {
		return err
	}
	started.Store(w)
	log.Info("worker starting", "model", model.ID(), "nats", redact.URL(nf.NATSURL))
	return w.Run(ctx)
}
