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

// summaryEvery is how often a following coordinator stores the job's
// summary; SummaryMaxAge how old a summary Summary still trusts.
const (
	summaryEvery  = 2 * time.Second
	SummaryMaxAge = 10 * time.Second
)

// Summary returns the job's status without reading every shard's state
// when it can: from the summary a coordinator following the job stores
// every few seconds, if it is under SummaryMaxAge old or the job finished
// (with no retry round since); else from every shard's state, like
// Status. Its States hold only the shards not done. It answers in
// milliseconds at any number of shards while a coordinator follows the
// job.
func (c *Coordinator) Summary(ctx context.Context, job string) (Status, error) {
	spec, err := c.cfg.Jobs.Spec(ctx, job)
	if err != nil {
		return Status{}, err
	}
	sum, err := c.cfg.Jobs.Summary(ctx, job)
	final := spec.Finished && sum.Complete() && len(spec.Retries) == 0
	if err != nil || !(final || time.Since(sum.UpdatedAt) < SummaryMaxAge) {
		st, err := c.Status(ctx, job)
		if err != nil {
			return Status{}, err
		}
		unhealthy := map[string]jobstate.ShardState{}
		for id, s := range st.States {
			if s.State != jobstate.StateDone {
				unhealthy[id] = s
			}
		}
		st.States = unhealthy
		return st, nil
	}
	p := sum.Progress
	p.Published, p.Shards = spec.Published, spec.Shards
	p.Images = max(p.Images, spec.Images)
	st := Status{Spec: spec, Progress: p, States: sum.Unhealthy}
	if waiting, _, err := c.cfg.Queue.Backlog(ctx); err == nil {
		st.Waiting = waiting
	}
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

// Follow follows the job until every shard is done or failed, or the job
// is marked failed (ErrJobFailed), calling
// onStatus (if not nil) with a snapshot every PollInterval while anything
// changed, and returns the last one. The shard states come from one
// long-lived watch of the job's keys, so following costs O(changes), not
// O(shards) per interval; each interval adds one read of the spec and one
// of the queue's backlog. Errors (NATS restarting, a leader election) are
// logged and the watch reopened.
func (c *Coordinator) Follow(ctx context.Context, job string, onStatus func(Status)) (Status, error) {
	inFlight := newProgressNotes()
	sub, err := c.cfg.JS.Conn().Subscribe(c.cfg.Queue.ProgressSubject(job), inFlight.note)
	if err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	tick := time.NewTicker(c.cfg.PollInterval)
	defer tick.Stop()
	var (
		watch  *jobstate.ShardWatch
		tally  *jobstate.Tally
		synced bool // the watch delivered every current state
		dirty  bool // something changed since the last snapshot
		last   Status
		saved  time.Time // when the summary was last stored
		failed error     // the job can never succeed (Spec.Failure)
	)
	defer func() {
		if watch != nil {
			watch.Stop()
		}
	}()
	// snapshot reads the spec and the backlog and reports the tally.
	snapshot := func() (Status, bool) {
		spec, err := c.cfg.Jobs.Spec(ctx, job)
		if err != nil {
			if ctx.Err() == nil {
				c.cfg.Log.Warn("reading job spec failed; retrying", "job", job, "err", err)
			}
			return Status{}, false
		}
		if spec.Failure != "" {
			st := Status{Spec: spec, Progress: tally.Progress(spec), States: tally.States()}
			if onStatus != nil {
				onStatus(st)
			}
			failed = fmt.Errorf("%w: %s", ErrJobFailed, spec.Failure)
			return st, true
		}
		if !dirty && spec.Published == last.Spec.Published && spec.Shards == last.Spec.Shards && inFlight.quiet() {
			return last, false
		}
		st := Status{Spec: spec, Progress: tally.Progress(spec), States: tally.States()}
		if waiting, _, err := c.cfg.Queue.Backlog(ctx); err == nil {
			st.Waiting = waiting
		}
		st.InFlightImages = inFlight.sum(st.States)
		c.observe(st)
		dirty, last = false, st
		if st.Complete() || time.Since(saved) >= summaryEvery {
			if err := c.cfg.Jobs.PutSummary(ctx, job, tally.Summary(spec)); err != nil {
				c.cfg.Log.Debug("storing the job summary failed", "job", job, "err", err)
			} else {
				saved = time.Now()
			}
		}
		if onStatus != nil {
			onStatus(st)
		}
		return st, st.Complete()
	}
	for {
		if watch == nil {
			w, err := c.cfg.Jobs.WatchJob(ctx, job)
			if err != nil {
				if ctx.Err() != nil {
					return Status{}, ctx.Err()
				}
				c.cfg.Log.Warn("watching job state failed; retrying", "job", job, "err", err)
				select {
				case <-ctx.Done():
					return Status{}, ctx.Err()
				case <-tick.C:
				}
				continue
			}
			watch, tally, synced, dirty = w, jobstate.NewTally(), false, true
		}
		select {
		case <-ctx.Done():
			return Status{}, ctx.Err()
		case entry, ok := <-watch.Updates():
			switch {
			case !ok:
				c.cfg.Log.Warn("job state watch closed; reopening it", "job", job)
				watch.Stop()
				watch = nil
			case entry == nil:
				synced = true
				if st, done := snapshot(); done {
					return st, failed
				}
			default:
				u, err := watch.Decode(entry)
				if err != nil {
					c.cfg.Log.Warn("skipping an unreadable shard state", "job", job, "err", err)
					continue
				}
				tally.Apply(u.Shard, u.State)
				dirty = true
			}
		case <-tick.C:
			if !synced {
				continue
			}
			if st, done := snapshot(); done {
				return st, failed
			}
		}
	}
}

// progressNotes keeps the latest progress note of each shard.
type progressNotes struct {
	mu     sync.Mutex
	images map[string]int
	fresh  bool // a note came since the last sum
}

// quiet reports that no note came since the last sum.
func (p *progressNotes) quiet() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.fresh
}

func newProgressNotes() *progressNotes { return &progressNotes{images: map[string]int{}} }

func (p *progressNotes) note(msg *nats.Msg) {
	var note queue.Progress
	if json.Unmarshal(msg.Data, &note) != nil {
		return
	}
	p.mu.Lock()
	p.images[note.Shard] = note.Images
	p.fresh = true
	p.mu.Unlock()
}

// sum adds up the notes of shards that are not finished, forgetting the
// finished ones. It costs O(shards in flight).
func (p *progressNotes) sum(states map[string]jobstate.ShardState) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fresh = false
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
