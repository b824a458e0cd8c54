// Package scalebench measures the pipeline's coordination at scale: a NATS
// server, the coordinator and W workers, each in its own process, run a
// job of N one-pixel images that exist only as a listing (synth://N) with
// the nop model, and each process reports its CPU time and peak memory.
// It is `coordinator scale-bench`.
package scalebench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"blipflow/model/imageproc"
	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/pipeline/worker"
	"blipflow/storage"
)

// Event is one JSON line a role process prints on stdout.
type Event struct {
	Event string `json:"event"`
	// CPU is the process's user+system CPU seconds so far, PeakMB its
	// peak resident memory.
	CPU    float64 `json:"cpu_s"`
	PeakMB float64 `json:"peak_mb"`
	// Seconds is the phase's wall time (plan+publish, or follow).
	Seconds float64 `json:"seconds,omitempty"`
	Shards  int     `json:"shards,omitempty"`
	Images  int     `json:"images,omitempty"`
	Rows    int     `json:"rows,omitempty"`
	Error   string  `json:"error,omitempty"`
	URL     string  `json:"url,omitempty"`
}

// usage returns the process's CPU seconds and peak RSS in MB.
func usage() (cpu, peakMB float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), float64(ru.Maxrss) / 1024
}

// emitter prints Events as JSON lines.
type emitter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newEmitter(w io.Writer) *emitter { return &emitter{enc: json.NewEncoder(w)} }

func (e *emitter) emit(ev Event) {
	ev.CPU, ev.PeakMB = usage()
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.enc.Encode(ev)
}

// RoleConfig configures one role process.
type RoleConfig struct {
	NATS     string // server URL (coordinator, workers)
	StoreDir string // JetStream folder (nats)
	Port     int    // client port (nats)
	Job      string
	Images   int
	// ShardSize, Workers, BatchSize, Concurrency and Replicas set up the
	// job and the workers.
	ShardSize, Workers, BatchSize, Concurrency, Replicas int
}

// quiet is the roles' logger: warnings and errors only, on stderr.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openSynth opens the synth:// stores of the benchmark.
func openSynth(_ context.Context, location string) (storage.Store, error) {
	return synth.OpenStore(location)
}

// RunNATS serves NATS with JetStream until ctx ends, then reports its
// usage.
func RunNATS(ctx context.Context, cfg RoleConfig, stdout io.Writer) error {
	out := newEmitter(stdout)
	srv, err := natsembed.Start(natsembed.Config{StoreDir: cfg.StoreDir, Port: cfg.Port, Name: "scale-bench"})
	if err != nil {
		return err
	}
	out.emit(Event{Event: "ready", URL: srv.URL()})
	<-ctx.Done()
	srv.Shutdown()
	out.emit(Event{Event: "stopped"})
	return nil
}

// RunWorkers runs cfg.Workers in-process workers with the nop model
// (one-pixel preprocessing) until ctx ends, then reports their usage.
func RunWorkers(ctx context.Context, cfg RoleConfig, stdout io.Writer) error {
	out := newEmitter(stdout)
	log := quiet()
	conn, err := node.Dial(ctx, cfg.NATS, "scale-bench-workers", queue.Config{Replicas: cfg.Replicas}, jobstate.Config{}, log)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	pixels := imageproc.DefaultConfig()
	pixels.Size = imageproc.Size{Height: 1, Width: 1}
	model := &pipeline.NopModel{Pixels: &pixels}
	var wg sync.WaitGroup
	errs := make([]error, cfg.Workers)
	for i := range cfg.Workers {
		w, err := worker.New(worker.Config{
			JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, Model: model, OpenStore: openSynth,
			Name: fmt.Sprintf("bench-%d", i), BatchSize: cfg.BatchSize, Concurrency: cfg.Concurrency,
			DrainTimeout: 5 * time.Second, Log: log,
		})
		if err != nil {
			return err
		}
		wg.Go(func() { errs[i] = w.Run(ctx) })
	}
	out.emit(Event{Event: "ready"})
	wg.Wait()
	out.emit(Event{Event: "stopped"})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// RunCoordinator submits the job over synth://Images, follows it to the
// end and writes its manifest, reporting its usage after publishing and
// at the end.
func RunCoordinator(ctx context.Context, cfg RoleConfig, stdout io.Writer) error {
	out := newEmitter(stdout)
	log := quiet()
	conn, err := node.Dial(ctx, cfg.NATS, "scale-bench-coordinator", queue.Config{Replicas: cfg.Replicas}, jobstate.Config{}, log)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	coord, err := coordinator.New(coordinator.Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: openSynth, Log: log})
	if err != nil {
		return err
	}
	task, err := pipeline.ParseTask(pipeline.TaskCaption, "")
	if err != nil {
		return err
	}
	start := time.Now()
	spec, err := coord.Submit(ctx, coordinator.Request{
		ID: cfg.Job, Input: fmt.Sprintf("%s%d", synth.StoreScheme, cfg.Images), Output: synth.StoreScheme + "out",
		Task: task, ShardSize: cfg.ShardSize,
	})
	if err != nil {
		return err
	}
	out.emit(Event{Event: "published", Seconds: time.Since(start).Seconds(), Shards: spec.Shards, Images: spec.Images})
	start = time.Now()
	st, err := coord.Follow(ctx, spec.ID, nil)
	if err != nil {
		return err
	}
	m, err := coord.Finish(ctx, st)
	if err != nil {
		return err
	}
	out.emit(Event{Event: "finished", Seconds: time.Since(start).Seconds(), Shards: m.Done, Rows: m.Rows})
	return nil
}
