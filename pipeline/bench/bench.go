// Package bench measures the throughput of the pipeline's plumbing with
// the nop model: listing, queueing, reading, decoding, preprocessing,
// batching and writing, everything but the model.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/local"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/synth"
	"blipflow/pipeline/worker"
	"blipflow/storage"
)

// Config describes a benchmark run. Zero fields take the defaults.
type Config struct {
	// Dir holds the dataset (Dir/in) and the runs' outputs and queues.
	Dir string
	// Images and their Width×Height (1000 of 256×256).
	Images, Width, Height int
	// ShardSize (100), Workers (1), BatchSize (16) and Concurrency (2)
	// configure the job as `coordinator run --local` does.
	ShardSize, Workers, BatchSize, Concurrency int
	// Task is what the nop model computes (captions and embeddings).
	Task pipeline.Task
}

func (c Config) withDefaults() Config {
	set := func(field *int, value int) {
		if *field <= 0 {
			*field = value
		}
	}
	set(&c.Images, 1000)
	set(&c.Width, 256)
	set(&c.Height, 256)
	set(&c.ShardSize, 100)
	set(&c.Workers, 1)
	set(&c.BatchSize, 16)
	set(&c.Concurrency, 2)
	if !c.Task.Caption && !c.Task.Embed {
		c.Task = pipeline.Task{Caption: true, Embed: true}
	}
	return c
}

// Prepare writes the dataset to Dir/in unless it is there already.
func Prepare(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	in, err := storage.Open(ctx, filepath.Join(cfg.Dir, "in"), storage.Config{})
	if err != nil {
		return err
	}
	if _, err := in.Stat(ctx, synth.Key(cfg.Images-1)); err == nil {
		return nil
	}
	return synth.Write(ctx, in, cfg.Images, cfg.Width, cfg.Height)
}

// Result is one run's measurements.
type Result struct {
	Cores      int           // runtime.NumCPU
	GOMAXPROCS int           // runtime.GOMAXPROCS during the run
	Images     int           // rows written
	Shards     int           // shards processed
	Elapsed    time.Duration // wall time from listing to manifest
	// StageMS is the mean time per call of each worker stage in
	// milliseconds (read, decode, preprocess per image; model per batch;
	// write, shard per shard).
	StageMS map[string]float64
}

// ImagesPerSecond is the run's throughput.
func (r Result) ImagesPerSecond() float64 { return float64(r.Images) / r.Elapsed.Seconds() }

// Run prepares the dataset if needed and runs one fresh job over it (its
// own output folder and queue) with the nop model.
func Run(ctx context.Context, cfg Config, run int) (Result, error) {
	cfg = cfg.withDefaults()
	if err := Prepare(ctx, cfg); err != nil {
		return Result{}, err
	}
	reg := prometheus.NewRegistry()
	wm := metrics.NewWorker(reg)
	runDir := filepath.Join(cfg.Dir, fmt.Sprintf("run-%d", run))
	start := time.Now()
	m, err := local.Run(ctx, local.Config{
		StoreDir: filepath.Join(runDir, "nats"),
		Request: coordinator.Request{
			ID: fmt.Sprintf("bench-%d", run), Input: filepath.Join(cfg.Dir, "in"), Output: filepath.Join(runDir, "out"),
			Task: cfg.Task, ShardSize: cfg.ShardSize,
		},
		Model:   &pipeline.NopModel{},
		Workers: cfg.Workers,
		Worker:  worker.Config{BatchSize: cfg.BatchSize, Concurrency: cfg.Concurrency, Metrics: wm},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	elapsed := time.Since(start)
	if err != nil {
		return Result{}, err
	}
	if m.Rows != cfg.Images || m.ErrorRows != 0 {
		return Result{}, fmt.Errorf("bench run %d: %d rows (%d errors), want %d", run, m.Rows, m.ErrorRows, cfg.Images)
	}
	stages, err := stageMeans(reg)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Images: m.Rows, Shards: m.Shards,
		Elapsed: elapsed, StageMS: stages,
	}, nil
}

// stageMeans reads the mean of each stage's latency histogram.
func stageMeans(reg *prometheus.Registry) (map[string]float64, error) {
	families, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("bench: gather metrics: %w", err)
	}
	means := map[string]float64{}
	for _, fam := range families {
		if fam.GetName() != "blipflow_worker_stage_seconds" {
			continue
		}
		for _, m := range fam.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			for _, label := range m.GetLabel() {
				if label.GetName() == "stage" {
					means[label.GetValue()] = 1000 * h.GetSampleSum() / float64(h.GetSampleCount())
				}
			}
		}
	}
	return means, nil
}
