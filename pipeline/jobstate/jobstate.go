// Package jobstate keeps job and shard state in a JetStream key-value
// bucket. Every shard has its own key (<job>.shard.<id>), so concurrent
// workers never contend; job counts are derived from those keys. The job
// spec (<job>.spec) is changed only by compare-and-set.
package jobstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the KV bucket of a zero Config.
const DefaultBucket = "blipflow_jobs"

// Config names the bucket.
type Config struct {
	Bucket string // DefaultBucket when empty
	// Replicas is the bucket's replication factor in a JetStream cluster.
	// Zero keeps the replicas of an existing bucket and creates a new one
	// with 1.
	Replicas int
}

// Spec describes a job: what to run on which input, and how far the
// coordinator got publishing it.
type Spec struct {
	ID     string `json:"id"`
	Input  string `json:"input"`
	Output string `json:"output"`
	Task   string `json:"task"`
	Prompt string `json:"prompt,omitempty"`
	// PromptColumn names the manifest column with each image's prompt.
	PromptColumn string `json:"prompt_column,omitempty"`
	// Generation overrides the workers' caption generation settings (a
	// generation_config.json object).
	Generation json.RawMessage `json:"generation,omitempty"`
	// Model names the model the job was submitted for (with its content
	// fingerprint when the coordinator loaded it); informational.
	Model     string `json:"model,omitempty"`
	ShardSize int    `json:"shard_size"`
	// Filter is a readable summary of the input filter.
	Filter string `json:"filter,omitempty"`
	// Shards and Images are the totals of the plan (set with Published).
	Shards int `json:"shards"`
	Images int `json:"images"`
	// Published is set once every shard is in the queue.
	Published bool `json:"published"`
	// Finished is set once the manifest is written.
	Finished  bool      `json:"finished"`
	CreatedAt time.Time `json:"created_at"`
	// Dedup, when set, makes workers skip images whose content was
	// already processed (see Dedup).
	Dedup *Dedup `json:"dedup,omitempty"`
	// Parent names the job whose failed images this job re-runs (a retry
	// round; empty for a submitted job).
	Parent string `json:"parent,omitempty"`
	// Retries are the job's retry rounds, oldest first.
	Retries []RetryRound `json:"retries,omitempty"`
	// SourceRoot, when set, is where every local path or s3:// location a
	// manifest names must be (the manifest's folder, or its --base);
	// workers give rows outside it an error. Empty: anywhere
	// (--allow-local-paths, or an input that is not a manifest).
	SourceRoot string `json:"source_root,omitempty"`
	// AllowPrivateAddresses lets image URLs reach loopback, link-local
	// and private addresses.
	AllowPrivateAddresses bool `json:"allow_private_addresses,omitempty"`
	// Failure, when set, says why the job cannot succeed (a permanent
	// error a worker met); the coordinator stops following it at once.
	Failure string `json:"failure,omitempty"`
}

// SameWork reports whether two specs ask for the same output (the fields a
// resumed job may not change).
func (s Spec) SameWork(o Spec) bool {
	return s.Input == o.Input && s.Output == o.Output && s.Task == o.Task &&
		s.Prompt == o.Prompt && s.ShardSize == o.ShardSize && s.Filter == o.Filter &&
		s.Dedup.equal(o.Dedup) && s.PromptColumn == o.PromptColumn && string(s.Generation) == string(o.Generation) &&
		(s.Model == "" || o.Model == "" || s.Model == o.Model)
}

// Shard states.
const (
	StateRetrying = "retrying" // a delivery failed; the shard will be redelivered
	StateDone     = "done"     // output written
	StateFailed   = "failed"   // dead-lettered
)

// ShardState is the latest news of one shard.
type ShardState struct {
	State string `json:"state"`
	// Rows and ErrorRows count the output rows and those with an error.
	Rows      int `json:"rows"`
	ErrorRows int `json:"error_rows"`
	// Duplicates counts the rows skipped as copies of content processed
	// before (see Dedup).
	Duplicates int `json:"duplicate_rows,omitempty"`
	// RetryRound is the last retry round whose rows were merged into the
	// shard's file (0: none).
	RetryRound int `json:"retry_round,omitempty"`
	// Images is the shard's size (also for failed shards).
	Images int `json:"images"`
	// File is the output key of the shard's Parquet file.
	File string `json:"file,omitempty"`
	// Model is the model id that produced the file.
	Model string `json:"model,omitempty"`
	// Reason says why the last delivery failed.
	Reason     string    `json:"reason,omitempty"`
	Deliveries int       `json:"deliveries,omitempty"`
	Worker     string    `json:"worker,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Store reads and writes job state.
type Store struct {
	kv jetstream.KeyValue
}

// Open creates the bucket if needed and returns the Store.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
		if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
			if st, err := kv.Status(ctx); err == nil {
				if info, ok := st.(*jetstream.KeyValueBucketStatus); ok {
					cfg.Replicas = max(info.StreamInfo().Config.Replicas, 1)
				}
			}
		} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("kv bucket %s: %w", cfg.Bucket, err)
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "blipflow job specs and shard states",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s (%d replicas): %w", cfg.Bucket, cfg.Replicas, err)
	}
	return &Store{kv: kv}, nil
}

func specKey(job string) string         { return job + ".spec" }
func shardKey(job, shard string) string { return job + ".shard." + shard }
func shardPrefix(job string) string     { return job + ".shard." }

// ErrNoJob reports an unknown job id.
var ErrNoJob = errors.New("no such job")

// Spec returns the spec of job; errors.Is(err, ErrNoJob) when unknown.
func (s *Store) Spec(ctx context.Context, job string) (Spec, error) {
	spec, _, err := s.specRev(ctx, job)
	return spec, err
}

func (s *Store) specRev(ctx context.Context, job string) (Spec, uint64, error) {
	entry, err := s.kv.Get(ctx, specKey(job))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Spec{}, 0, fmt.Errorf("job %s: %w", job, ErrNoJob)
	}
	if err != nil {
		return Spec{}, 0, fmt.Errorf("job %s spec: %w", job, err)
	}
	var spec Spec
	if err := json.Unmarshal(entry.Value(), &spec); err != nil {
		return Spec{}, 0, fmt.Errorf("job %s spec: %w", job, err)
	}
	return spec, entry.Revision(), nil
}

// CreateSpec stores spec unless the job exists. It returns the stored spec:
// spec itself, or the existing one when it asks for the same work (a
// resumed job); a job id reused for different work is an error.
func (s *Store) CreateSpec(ctx context.Context, spec Spec) (Spec, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return Spec{}, fmt.Errorf("job %s spec: %w", spec.ID, err)
	}
	_, err = s.kv.Create(ctx, specKey(spec.ID), data)
	if err == nil {
		return spec, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return Spec{}, fmt.Errorf("job %s spec: %w", spec.ID, err)
	}
	existing, err := s.Spec(ctx, spec.ID)
	if err != nil {
		return Spec{}, err
	}
	if !existing.SameWork(spec) {
		return Spec{}, fmt.Errorf("job %s exists with other settings (input %s, output %s, task %s, shard size %d): pick another --job",
			spec.ID, existing.Input, existing.Output, existing.Task, existing.ShardSize)
	}
	return existing, nil
}

// UpdateSpec applies change to the stored spec with compare-and-set,
// retrying when another process changed it meanwhile.
func (s *Store) UpdateSpec(ctx context.Context, job string, change func(*Spec)) (Spec, error) {
	for {
		spec, rev, err := s.specRev(ctx, job)
		if err != nil {
			return Spec{}, err
		}
		change(&spec)
		data, err := json.Marshal(spec)
		if err != nil {
			return Spec{}, fmt.Errorf("job %s spec: %w", job, err)
		}
		_, err = s.kv.Update(ctx, specKey(job), data, rev)
		if err == nil {
			return spec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Spec{}, fmt.Errorf("update job %s spec: %w", job, err)
		}
	}
}

// PutShard records the state of a shard. A failure never replaces a done
// shard (a late dead letter for a shard that got through), and the
// deliveries recorded never go down: a shard done twice (a worker cut off
// from NATS past the ack wait finishing it after another did) keeps the
// higher count.
func (s *Store) PutShard(ctx context.Context, job, shard string, st ShardState) error {
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = time.Now().UTC()
	}
	key := shardKey(job, shard)
	for {
		entry, err := s.kv.Get(ctx, key)
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("get shard %s of job %s: %w", shard, job, err)
		default:
			rev = entry.Revision()
			var old ShardState
			if json.Unmarshal(entry.Value(), &old) == nil {
				if old.State == StateDone && st.State != StateDone {
					return nil
				}
				st.Deliveries = max(st.Deliveries, old.Deliveries)
			}
		}
		data, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("shard %s of job %s: %w", shard, job, err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, data)
		} else {
			_, err = s.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("put shard %s of job %s: %w", shard, job, err)
		}
	}
}

// Shards returns the recorded state of every shard of job that has one.
func (s *Store) Shards(ctx context.Context, job string) (map[string]ShardState, error) {
	states := map[string]ShardState{}
	err := s.WatchShards(ctx, job, func(id string, st ShardState) bool {
		states[id] = st
		return true
	}, true)
	return states, err
}

// WatchShards calls fn with the state of every shard of job, then (unless
// initialOnly) with every change, until fn returns false or ctx ends.
func (s *Store) WatchShards(ctx context.Context, job string, fn func(shard string, st ShardState) bool, initialOnly bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prefix := shardPrefix(job)
	w, err := s.kv.Watch(ctx, prefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watch shards of job %s: %w", job, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case entry, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch shards of job %s: watcher closed", job)
			}
			if entry == nil {
				if initialOnly {
					return nil
				}
				continue
			}
			var st ShardState
			if err := json.Unmarshal(entry.Value(), &st); err != nil {
				return fmt.Errorf("shard key %s: %w", entry.Key(), err)
			}
			if !fn(entry.Key()[len(prefix):], st) {
				return nil
			}
		}
	}
}

// Progress sums up a job.
type Progress struct {
	Published bool `json:"published"`  // every shard is in the queue
	Shards    int  `json:"shards"`     // planned shards (0 until the plan is published)
	Done      int  `json:"done"`       // shards with output
	Failed    int  `json:"failed"`     // dead-lettered shards
	Retrying  int  `json:"retrying"`   // shards whose last delivery failed
	Images    int  `json:"images"`     // planned images
	Rows      int  `json:"rows"`       // rows written
	ErrorRows int  `json:"error_rows"` // rows with an error
	// Duplicates counts rows skipped as copies of earlier content.
	Duplicates int `json:"duplicate_rows"`
	// Redelivered counts finished shards that took more than one delivery
	// (a worker lost, cut off from NATS past the ack wait, or a failure
	// retried).
	Redelivered int `json:"redelivered,omitempty"`
}

// Complete reports whether every planned shard is done or failed.
func (p Progress) Complete() bool { return p.Published && p.Done+p.Failed >= p.Shards }

// Summarize derives the job's progress from its shard states (see Tally).
func Summarize(spec Spec, states map[string]ShardState) Progress {
	t := NewTally()
	for id, st := range states {
		t.Apply(id, st)
	}
	return t.Progress(spec)
}
