package jobstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Summary is a job's progress as a coordinator following it last saw it
// (<job>.summary): what `coordinator status` reads instead of every
// shard's key while it is fresh.
type Summary struct {
	Progress
	// Unhealthy holds the shards not done (retrying or failed), up to
	// MaxUnhealthy of them; UnhealthyCut says some were left out.
	Unhealthy    map[string]ShardState `json:"unhealthy,omitempty"`
	UnhealthyCut bool                  `json:"unhealthy_cut,omitempty"`
	UpdatedAt    time.Time             `json:"updated_at"`
}

// MaxUnhealthy caps the shards a Summary lists.
const MaxUnhealthy = 1000

func summaryKey(job string) string { return job + ".summary" }

// Summary returns the tally as a Summary of the job.
func (t *Tally) Summary(spec Spec) Summary {
	s := Summary{Progress: t.Progress(spec), UpdatedAt: time.Now().UTC()}
	for id, st := range t.unhealthy {
		if len(s.Unhealthy) == MaxUnhealthy {
			s.UnhealthyCut = true
			break
		}
		if s.Unhealthy == nil {
			s.Unhealthy = map[string]ShardState{}
		}
		s.Unhealthy[id] = st
	}
	return s
}

// PutSummary stores a job's summary.
func (s *Store) PutSummary(ctx context.Context, job string, sum Summary) error {
	data, err := json.Marshal(sum)
	if err != nil {
		return fmt.Errorf("job %s summary: %w", job, err)
	}
	if _, err := s.kv.Put(ctx, summaryKey(job), data); err != nil {
		return fmt.Errorf("put job %s summary: %w", job, err)
	}
	return nil
}

// ErrNoSummary reports a job no coordinator has summarised yet.
var ErrNoSummary = errors.New("no summary")

// Summary returns the job's last stored summary.
func (s *Store) Summary(ctx context.Context, job string) (Summary, error) {
	entry, err := s.kv.Get(ctx, summaryKey(job))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Summary{}, fmt.Errorf("job %s: %w", job, ErrNoSummary)
	}
	if err != nil {
		return Summary{}, fmt.Errorf("job %s summary: %w", job, err)
	}
	var sum Summary
	if err := json.Unmarshal(entry.Value(), &sum); err != nil {
		return Summary{}, fmt.Errorf("job %s summary: %w", job, err)
	}
	return sum, nil
}
