package jobstate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Dedup asks workers to process each image content (SHA-256 of the bytes)
// once: the first image to claim a content hash is processed, the others
// are recorded as its duplicates.
type Dedup struct {
	// Scope is the job whose claims count: the job itself, or for a retry
	// round the job it retries (so rounds see the job's claims).
	Scope string `json:"scope"`
	// Table is an earlier results table whose contents were claimed before
	// the job started (empty: none).
	Table string `json:"table,omitempty"`
}

// equal reports whether two dedup settings (either may be nil) agree.
func (d *Dedup) equal(o *Dedup) bool {
	if d == nil || o == nil {
		return d == o
	}
	return *d == *o
}

// ContentClaim names the image that claimed a content hash first.
type ContentClaim struct {
	// Key is the image key.
	Key string `json:"key"`
	// Table is the earlier results table holding Key (empty: the job).
	Table string `json:"table,omitempty"`
}

func contentKey(scope, sha string) string { return scope + ".hash." + sha }

// ClaimContent records claim as the first image with content sha (hex
// SHA-256) in scope, unless another claim is recorded: first writer wins,
// also across concurrent workers. It returns the recorded claim and
// whether it is claim itself (a redelivered shard re-claims its own
// images).
func (s *Store) ClaimContent(ctx context.Context, scope, sha string, claim ContentClaim) (ContentClaim, bool, error) {
	if raw, err := hex.DecodeString(sha); err != nil || len(raw) != 32 {
		return ContentClaim{}, false, fmt.Errorf("claim %s in %s: want a hex SHA-256", sha, scope)
	}
	data, err := json.Marshal(claim)
	if err != nil {
		return ContentClaim{}, false, fmt.Errorf("claim %s in %s: %w", sha, scope, err)
	}
	key := contentKey(scope, sha)
	for {
		_, err := s.kv.Create(ctx, key, data)
		if err == nil {
			return claim, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return ContentClaim{}, false, fmt.Errorf("claim %s: %w", key, err)
		}
		entry, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile: claim again
		}
		if err != nil {
			return ContentClaim{}, false, fmt.Errorf("read claim %s: %w", key, err)
		}
		var first ContentClaim
		if err := json.Unmarshal(entry.Value(), &first); err != nil {
			return ContentClaim{}, false, fmt.Errorf("claim %s: %w", key, err)
		}
		return first, first == claim, nil
	}
}
