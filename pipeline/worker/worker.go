package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"blipflow/internal/retry"
	"blipflow/pipeline"
	"blipflow/pipeline/fetch"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
	"blipflow/storage"
)

// Worker pulls and processes shards. Create it with New and start it with
// Run.
type Worker struct {
	cfg  Config
	prep pipeline.Preprocessor
	// fetcher reaches public addresses only; openFetcher any.
	fetcher, openFetcher *fetch.Fetcher
	// decodeMem is the decode budget, in bytes.
	decodeMem *semaphore.Weighted

	readCh   chan *item
	decodeCh chan *item
	modelCh  chan *item

	ready atomic.Bool
	// stopping is closed when Run's context ends: shards still waiting
	// for images are handed back at once.
	stopping <-chan struct{}
	// modelOK is whether the model's last run succeeded.
	modelOK atomic.Bool

	mu     sync.Mutex
	specs  map[string]jobstate.Spec
	stores map[string]storage.Store
}

// New checks cfg and prepares a Worker.
func New(cfg Config) (*Worker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	prep, err := cfg.Model.Preprocessor()
	if err != nil {
		return nil, fmt.Errorf("worker: model %s preprocessor: %w", cfg.Model.ID(), err)
	}
	return &Worker{
		cfg:         cfg,
		prep:        prep,
		fetcher:     fetch.New(safeFetch(cfg.Fetch)),
		openFetcher: fetch.New(openFetch(cfg.Fetch)),
		decodeMem:   semaphore.NewWeighted(cfg.DecodeBudget),
		readCh:      make(chan *item, cfg.Readers),
		decodeCh:    make(chan *item, cfg.Decoders),
		modelCh:     make(chan *item, cfg.Prefetch),
		specs:       map[string]jobstate.Spec{},
		stores:      map[string]storage.Store{},
	}, nil
}

// Ready reports nil once the worker pulls from the queue (for /readyz).
func (w *Worker) Ready() error {
	if !w.ready.Load() {
		return errors.New("worker is not pulling shards")
	}
	if !w.cfg.JS.Conn().IsConnected() {
		return errors.New("nats is disconnected")
	}
	return nil
}

// Run pulls and processes shards until ctx ends, then stops pulling and
// drains: shards whose images are all through the model are written and
// acknowledged (for up to DrainTimeout), the others are handed back (Nak)
// at once, so another worker can take them within seconds. It returns
// without waiting more than stageGrace for a model run still under way.
func (w *Worker) Run(ctx context.Context) error {
	log := w.cfg.Log.With("worker", w.cfg.Name)
	w.stopping = ctx.Done()
	// work outlives ctx by the drain timeout, so in-flight shards can finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var stages sync.WaitGroup
	w.startStages(work, &stages)

	var side sync.WaitGroup
	side.Add(2)
	go func() {
		defer side.Done()
		w.deadLetterExhausted(ctx)
	}()
	go func() {
		defer side.Done()
		w.watchBacklog(ctx)
	}()

	var shards sync.WaitGroup
	w.pull(ctx, work, &shards)
	w.ready.Store(false)

	drained := make(chan struct{})
	go func() { shards.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(w.cfg.DrainTimeout):
		log.Warn("drain timeout: handing back in-flight shards", "timeout", w.cfg.DrainTimeout)
		cancelWork()
		<-drained
	}
	cancelWork()
	stagesDone := make(chan struct{})
	go func() { stages.Wait(); close(stagesDone) }()
	select {
	case <-stagesDone:
	case <-time.After(stageGrace):
		log.Warn("a model run is still under way; stopping without waiting for it", "waited", stageGrace)
	}
	side.Wait()
	log.Info("worker stopped")
	return nil
}

// stageGrace is how long a stopping worker waits for its stages (a model
// run that cannot be interrupted) after its shards are settled.
const stageGrace = 3 * time.Second

// pull takes shards from the queue while fewer than Concurrency are in
// flight, until ctx ends; each shard is processed under work. A shard is
// asked for only once a slot is free (queue.Puller buffers none ahead).
func (w *Worker) pull(ctx, work context.Context, shards *sync.WaitGroup) {
	log := w.cfg.Log.With("worker", w.cfg.Name)
	slots := make(chan struct{}, w.cfg.Concurrency)
	puller := w.cfg.Queue.Puller()
	defer puller.Stop()
	backoff := w.cfg.Retry.policy().BackOff()
	pause := func(msg string, err error) {
		delay := backoff.NextBackOff()
		log.Warn(msg, "err", err, "delay", delay)
		_ = retry.Wait(ctx, delay)
	}
	for ctx.Err() == nil {
		if !puller.Active() {
			if err := puller.Start(ctx); err != nil {
				if ctx.Err() == nil {
					pause("cannot reach the shard consumer; retrying", err)
				}
				continue
			}
			w.ready.Store(true)
			log.Info("pulling shards", "consumer", w.cfg.Queue.Config().Consumer,
				"batch_size", w.cfg.BatchSize, "concurrency", w.cfg.Concurrency)
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		msg, err := puller.Next(ctx)
		if err != nil {
			<-slots
			if ctx.Err() == nil {
				w.ready.Store(false)
				pause("pulling shards failed; starting over", err)
			}
			continue
		}
		backoff.Reset()
		shards.Add(1)
		w.cfg.Metrics.InFlight.Inc()
		go func() {
			defer func() {
				w.cfg.Metrics.InFlight.Dec()
				<-slots
				shards.Done()
			}()
			w.handle(work, msg)
		}()
	}
}

// deadLetterExhausted dead-letters shards that ran out of deliveries while
// no worker held them, retrying after errors until ctx ends.
func (w *Worker) deadLetterExhausted(ctx context.Context) {
	explain := func(ctx context.Context, dl queue.DeadLetter) string {
		if died, ok := w.diedOn(ctx, dl.Job, dl.Shard, dl.Deliveries+1); ok {
			return describeActive(died)
		}
		return ""
	}
	onDead := func(ctx context.Context, dl queue.DeadLetter) error {
		w.cfg.Log.Warn("shard dead-lettered", "job", dl.Job, "shard", dl.Shard, "reason", dl.Reason)
		return w.cfg.Jobs.PutShard(ctx, dl.Job, dl.Shard, jobstate.ShardState{
			State: jobstate.StateFailed, Images: dl.Task.Images, Reason: dl.Reason,
			Deliveries: dl.Deliveries, Worker: w.cfg.Name,
		})
	}
	backoff := w.cfg.Retry.policy().BackOff()
	for ctx.Err() == nil {
		if err := w.cfg.Queue.DeadLetterExhausted(ctx, explain, onDead); err != nil && ctx.Err() == nil {
			delay := backoff.NextBackOff()
			w.cfg.Log.Warn("dead-letter listener failed; restarting", "err", err, "delay", delay)
			_ = retry.Wait(ctx, delay)
		}
	}
}

// watchBacklog keeps the queue gauges current.
func (w *Worker) watchBacklog(ctx context.Context) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		waiting, inFlight, err := w.cfg.Queue.Backlog(reqCtx)
		cancel()
		if err == nil {
			w.cfg.Metrics.QueueWaiting.Set(float64(waiting))
			w.cfg.Metrics.QueueInFlight.Set(float64(inFlight))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// spec returns a job's spec, cached (a job's work settings never change).
func (w *Worker) spec(ctx context.Context, job string) (jobstate.Spec, error) {
	w.mu.Lock()
	spec, ok := w.specs[job]
	w.mu.Unlock()
	if ok {
		return spec, nil
	}
	err := w.retry(ctx, "job "+job+" spec", func() error {
		var err error
		spec, err = w.cfg.Jobs.Spec(ctx, job)
		if errors.Is(err, jobstate.ErrNoJob) {
			return retry.Permanent(err)
		}
		return err
	})
	if err != nil {
		return jobstate.Spec{}, err
	}
	w.mu.Lock()
	w.specs[job] = spec
	w.mu.Unlock()
	return spec, nil
}

// store returns the store at location, opened once.
func (w *Worker) store(ctx context.Context, location string) (storage.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.stores[location]; ok {
		return s, nil
	}
	s, err := w.cfg.OpenStore(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", location, err)
	}
	w.stores[location] = s
	return s, nil
}

func safeFetch(c fetch.Config) fetch.Config { c.AllowPrivate = false; return c }

func openFetch(c fetch.Config) fetch.Config { c.AllowPrivate = true; return c }
