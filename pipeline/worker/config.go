// Package worker is the pipeline worker: it pulls shards from the JetStream
// work queue, reads their images (concurrently, with retries), decodes and
// preprocesses them on a pool that runs ahead of the model, batches images
// across shards, runs the model, writes one Parquet file per shard and only
// then acknowledges the shard. A redelivered shard rewrites the same output
// key, so every image appears in the output once.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"blipflow/pipeline"
	"blipflow/pipeline/fetch"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/queue"
	"blipflow/storage"
)

// Config sets up a Worker. JS, Queue, Jobs, Model and OpenStore are
// required; zero numbers take the defaults.
type Config struct {
	JS    jetstream.JetStream
	Queue *queue.Queue
	Jobs  *jobstate.Store
	// Model computes the rows.
	Model pipeline.Model
	// OpenStore opens a job's input or output location.
	OpenStore func(ctx context.Context, location string) (storage.Store, error)
	// Name identifies the worker in logs and shard states (host-pid).
	Name string
	// BatchSize is the number of images per model call (8).
	BatchSize int
	// Concurrency is the number of shards processed at once (2).
	Concurrency int
	// Readers is the number of concurrent image reads (16).
	Readers int
	// Decoders is the number of decoding goroutines (GOMAXPROCS).
	Decoders int
	// DecodeBudget bounds the bytes all concurrent decodes may hold at
	// once, each image counted by its header's decode cost (1.5 GiB). An
	// image costing more than the whole budget waits for the budget to be
	// free and runs alone.
	DecodeBudget int64
	// Prefetch is how many preprocessed images may wait for the model
	// (4*BatchSize).
	Prefetch int
	// BatchWait is how long a partial batch waits for more images before
	// it runs anyway (20ms).
	BatchWait time.Duration
	// DrainTimeout is how long, after Run's context ends, shards whose
	// images are all through the model may take to be written before they
	// are handed back to the queue (20s); shards still waiting for images
	// are handed back at once.
	DrainTimeout time.Duration
	// Retry governs reads and writes of the stores and of the job state.
	Retry Retry
	// Fetch governs the downloads of images given by URL.
	Fetch fetch.Config
	// RetryDelay is the base delay before a failed shard is redelivered;
	// it doubles with each delivery, up to 30 times itself (2s).
	RetryDelay time.Duration
	// ProgressInterval is how often a shard's progress is reported (1s).
	ProgressInterval time.Duration
	// Metrics receives the worker's metrics (nil: unregistered ones).
	Metrics *metrics.Worker
	// Log receives structured logs (nil: slog.Default()).
	Log *slog.Logger
}

// DefaultDecodeBudget is the default Config.DecodeBudget: 1.5 GiB.
const DefaultDecodeBudget = 3 << 29

// Retry is an exponential backoff policy for store and state operations.
type Retry struct {
	Attempts int           // tries in all (8)
	Initial  time.Duration // first delay (200ms)
	Max      time.Duration // delay cap (5s)
}

// withDefaults fills zero fields and checks the required ones.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.JS == nil:
		return c, fmt.Errorf("worker config: no JetStream")
	case c.Queue == nil:
		return c, fmt.Errorf("worker config: no queue")
	case c.Jobs == nil:
		return c, fmt.Errorf("worker config: no job state store")
	case c.Model == nil:
		return c, fmt.Errorf("worker config: no model")
	case c.OpenStore == nil:
		return c, fmt.Errorf("worker config: no OpenStore")
	}
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	positive(&c.BatchSize, 8)
	positive(&c.Concurrency, 2)
	positive(&c.Readers, 16)
	positive(&c.Decoders, runtime.GOMAXPROCS(0))
	positive(&c.Prefetch, 4*c.BatchSize)
	if c.DecodeBudget <= 0 {
		c.DecodeBudget = DefaultDecodeBudget
	}
	positive(&c.BatchWait, 20*time.Millisecond)
	positive(&c.DrainTimeout, 20*time.Second)
	positive(&c.Retry.Attempts, 8)
	positive(&c.Retry.Initial, 200*time.Millisecond)
	positive(&c.Retry.Max, 5*time.Second)
	positive(&c.RetryDelay, 2*time.Second)
	positive(&c.ProgressInterval, time.Second)
	if c.Metrics == nil {
		c.Metrics = metrics.NewWorker(prometheus.NewRegistry())
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c, nil
}

func positive[T int | time.Duration](field *T, value T) {
	if *field <= 0 {
		*field = value
	}
}
