package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
)

// Status is a snapshot of a job.
type Status struct {
	Spec jobstate.Spec
	jobstate.Progress
	// InFlightImages counts images of unfinished shards that workers
	// reported through the model (best effort, for progress displays).
	InFlightImages int
	// Waiting is the number of shards (of all jobs) waiting in the queue.
	Waiting uint64
	// States are the recorded states of the job's shards, by shard id.
	States map[string]jobstate.ShardState
}

// ImagesDone is the best estimate of the images through the model.
func (s Status) ImagesDone() int { return s.Rows + s.InFlightImages }

// Status reads the job's spec and shard states once.
func (c *Coordinator) Status(ctx context.Context, job string) (Status, error) {
	spec, err := c.cfg.Jobs.Spec(ctx, job)
	if err != nil {
		return Status{}, err
	}
	states, err := c.cfg.Jobs.Shards(ctx, job)
	if err != nil {
		return Status{}, err
	}
	st := Status{Spec: spec, Progress: jobstate.Summarize(spec, states), States: states}
	if waiting, _, err := c.cfg.Queue.Backlog(ctx); err == nil {
		st.Waiting = waiting
	}
	c.observe(st)
	return st, nil
}

// observe exports a status as metrics.
func (c *Coordinator) observe(st Status) {
	m, job := c.cfg.Metrics, st.Spec.ID
	m.JobShards.WithLabelValues(job, "total").Set(float64(st.Shards))
	m.JobShards.WithLabelValues(job, "done").Set(float64(st.Done))
	m.JobShards.WithLabelValues(job, "failed").Set(float64(st.Failed))
	m.JobShards.WithLabelValues(job, "retrying").Set(float64(st.Retrying))
	m.JobImages.WithLabelValues(job, "total").Set(float64(st.Images))
	m.JobImages.WithLabelValues(job, "done").Set(float64(st.Rows))
	m.JobImages.WithLabelValues(job, "error").Set(float64(st.ErrorRows))
	m.QueueDepth.Set(float64(st.Waiting))
}

// ErrJobFailed is returned by Follow for a job that can never succeed
// (jobstate.Spec.Failure says why).
var ErrJobFailed = errors.New("job failed")

// Follow polls the job until every shard is done or failed, calling
// onStatus (if not nil) with each snapshot, and returns the last one.
// Errors reading the state (NATS restarting) are logged and retried.
func (c *Coordinator) Follow(ctx context.Context, job string, onStatus func(Status)) (Status, error) {
	inFlight := newProgressNotes()
	sub, err := c.cfg.JS.Conn().Subscribe(c.cfg.Queue.ProgressSubject(job), inFlight.note)
	if err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	tick := time.NewTicker(c.cfg.PollInterval)
	defer tick.Stop()
	for {
		st, err := c.Status(ctx, job)
		switch {
		case err != nil && ctx.Err() != nil:
			return Status{}, ctx.Err()
		case err != nil:
			c.cfg.Log.Warn("reading job state failed; retrying", "job", job, "err", err)
		case st.Spec.Failure != "":
			if onStatus != nil {
				onStatus(st)
			}
			return st, fmt.Errorf("%w: %s", ErrJobFailed, st.Spec.Failure)
		default:
			st.InFlightImages = inFlight.sum(st.States)
			if onStatus != nil {
				onStatus(st)
			}
			if st.Complete() {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return Status{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// progressNotes keeps the latest progress note of each shard.
type progressNotes struct {
	mu     sync.Mutex
	images map[string]int
}

func newProgressNotes() *progressNotes { return &progressNotes{images: map[string]int{}} }

func (p *progressNotes) note(msg *nats.Msg) {
	var note queue.Progress
	if json.Unmarshal(msg.Data, &note) != nil {
		return
	}
	p.mu.Lock()
	p.images[note.Shard] = note.Images
	p.mu.Unlock()
}

// sum adds up the notes of shards that are not finished, forgetting the
// finished ones.
func (p *progressNotes) sum(states map[string]jobstate.ShardState) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for shard, n := range p.images {
		if st, ok := states[shard]; ok && (st.State == jobstate.StateDone || st.State == jobstate.StateFailed) {
			delete(p.images, shard)
			continue
		}
		total += n
	}
	return total
}
