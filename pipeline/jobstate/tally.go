package jobstate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Tally keeps a job's shard states and their sums current from updates:
// applying one costs O(1), so following a job costs O(changes), not
// O(shards) per look. Not safe for concurrent use.
type Tally struct {
	states map[string]ShardState
	// unhealthy are the shards not done.
	unhealthy map[string]ShardState
	sum       Progress
	// images sums the Images of every recorded shard (the count of a
	// WebDataset job, whose images only the workers learn).
	images int
}

// NewTally returns an empty Tally.
func NewTally() *Tally {
	return &Tally{states: map[string]ShardState{}, unhealthy: map[string]ShardState{}}
}

// Apply records the latest state of a shard.
func (t *Tally) Apply(shard string, st ShardState) {
	if old, ok := t.states[shard]; ok {
		t.count(old, -1)
	}
	t.states[shard] = st
	t.count(st, 1)
	if st.State == StateDone {
		delete(t.unhealthy, shard)
	} else {
		t.unhealthy[shard] = st
	}
}

func (t *Tally) count(st ShardState, sign int) {
	t.images += sign * st.Images
	if st.Deliveries > 1 && (st.State == StateDone || st.State == StateFailed) {
		t.sum.Redelivered += sign
	}
	switch st.State {
	case StateDone:
		t.sum.Done += sign
		t.sum.Rows += sign * st.Rows
		t.sum.ErrorRows += sign * st.ErrorRows
		t.sum.Duplicates += sign * st.Duplicates
	case StateFailed:
		t.sum.Failed += sign
	case StateRetrying:
		t.sum.Retrying += sign
	}
}

// Progress sums up the job. Images is the plan's count, or for a job
// whose shards' sizes are learnt as they run (WebDataset tars) the sum
// the workers reported so far.
func (t *Tally) Progress(spec Spec) Progress {
	p := t.sum
	p.Published, p.Shards, p.Images = spec.Published, spec.Shards, max(spec.Images, t.images)
	return p
}

// States returns the recorded states by shard id (the Tally's own map:
// read it, do not change it, and not after the next Apply).
func (t *Tally) States() map[string]ShardState { return t.states }

// Len is the number of shards with a recorded state.
func (t *Tally) Len() int { return len(t.states) }

// ShardUpdate is one change of a job's shard states from a ShardWatch.
type ShardUpdate struct {
	Shard string
	State ShardState
}

// ShardWatch is one long-lived watch of a job's shard keys: first the
// current state of every shard, then each change as it happens.
type ShardWatch struct {
	w      jetstream.KeyWatcher
	prefix string
}

// WatchJob starts watching the shard states of job.
func (s *Store) WatchJob(ctx context.Context, job string) (*ShardWatch, error) {
	prefix := shardPrefix(job)
	w, err := s.kv.Watch(ctx, prefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch shards of job %s: %w", job, err)
	}
	return &ShardWatch{w: w, prefix: prefix}, nil
}

// Updates delivers the watch's entries; a nil entry marks the end of the
// initial states. Decode each with Decode.
func (w *ShardWatch) Updates() <-chan jetstream.KeyValueEntry { return w.w.Updates() }

// Decode turns an entry of Updates into a ShardUpdate.
func (w *ShardWatch) Decode(entry jetstream.KeyValueEntry) (ShardUpdate, error) {
	var st ShardState
	if err := json.Unmarshal(entry.Value(), &st); err != nil {
		return ShardUpdate{}, fmt.Errorf("shard key %s: %w", entry.Key(), err)
	}
	return ShardUpdate{Shard: entry.Key()[len(w.prefix):], State: st}, nil
}

// Stop ends the watch.
func (w *ShardWatch) Stop() { _ = w.w.Stop() }
