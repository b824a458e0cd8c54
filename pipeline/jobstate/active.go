package jobstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Active records which images of a shard a worker is working on at a
// risky step (a large decode, a model run) before it starts it. A worker
// that dies at that step leaves the record behind, so the shard's next
// delivery knows which images were being processed when the worker died.
type Active struct {
	Worker   string `json:"worker"`
	Delivery int    `json:"delivery"`
	// Images maps each image key to its step ("decode" or "model").
	Images    map[string]string `json:"images"`
	UpdatedAt time.Time         `json:"updated_at"`
}

func activeKey(job, shard string) string { return job + ".active." + shard }

// PutActive replaces a shard's active record; an empty record deletes it.
func (s *Store) PutActive(ctx context.Context, job, shard string, a Active) error {
	key := activeKey(job, shard)
	if len(a.Images) == 0 {
		if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("clear active images of shard %s of job %s: %w", shard, job, err)
		}
		return nil
	}
	a.UpdatedAt = time.Now().UTC()
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("record active images of shard %s of job %s: %w", shard, job, err)
	}
	return nil
}

// GetActive returns a shard's active record; ok is false when there is
// none.
func (s *Store) GetActive(ctx context.Context, job, shard string) (a Active, ok bool, err error) {
	entry, err := s.kv.Get(ctx, activeKey(job, shard))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return Active{}, false, nil
	case err != nil:
		return Active{}, false, fmt.Errorf("active images of shard %s of job %s: %w", shard, job, err)
	}
	if err := json.Unmarshal(entry.Value(), &a); err != nil {
		return Active{}, false, fmt.Errorf("active images of shard %s of job %s: %w", shard, job, err)
	}
	return a, true, nil
}

// Actives returns the active records of job's shards, by shard id: what
// workers are on now, or were on when they died.
func (s *Store) Actives(ctx context.Context, job string) (map[string]Active, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prefix := job + ".active."
	w, err := s.kv.Watch(ctx, prefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch active images of job %s: %w", job, err)
	}
	defer w.Stop()
	out := map[string]Active{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case entry, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("watch active images of job %s: watcher closed", job)
			}
			if entry == nil {
				return out, nil
			}
			var a Active
			if err := json.Unmarshal(entry.Value(), &a); err != nil {
				return nil, fmt.Errorf("active key %s: %w", entry.Key(), err)
			}
			out[entry.Key()[len(prefix):]] = a
		}
	}
}
