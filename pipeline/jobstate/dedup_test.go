package jobstate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestClaimContentFirstWriterWins claims one content hash from many
// goroutines: exactly one wins and every other sees the winner.
func TestClaimContentFirstWriterWins(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	sha := strings.Repeat("ab", 32)
	const claimers = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		seen    = map[string]int{}
	)
	for i := range claimers {
		wg.Go(func() {
			key := fmt.Sprintf("img/%02d.png", i)
			first, own, err := s.ClaimContent(ctx, "job", sha, ContentClaim{Key: key})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if own {
				winners = append(winners, key)
			}
			seen[first.Key]++
		})
	}
	wg.Wait()
	if len(winners) != 1 || len(seen) != 1 || seen[winners[0]] != claimers {
		t.Fatalf("winners %v, claims seen %v; want one winner seen by all %d", winners, seen, claimers)
	}
	// The winner claiming again (a redelivered shard) still owns it.
	if _, own, err := s.ClaimContent(ctx, "job", sha, ContentClaim{Key: winners[0]}); err != nil || !own {
		t.Errorf("winner re-claiming: own %v, %v", own, err)
	}
	// Scopes are separate.
	if _, own, err := s.ClaimContent(ctx, "other-job", sha, ContentClaim{Key: "x"}); err != nil || !own {
		t.Errorf("claim in another scope: own %v, %v", own, err)
	}
	// A claim from an earlier table is reported with its table.
	tableSHA := strings.Repeat("cd", 32)
	earlier := ContentClaim{Key: "old/1.png", Table: "s3://b/old.parquet"}
	if _, _, err := s.ClaimContent(ctx, "job", tableSHA, earlier); err != nil {
		t.Fatal(err)
	}
	if first, own, err := s.ClaimContent(ctx, "job", tableSHA, ContentClaim{Key: "old/1.png"}); err != nil || own || first != earlier {
		t.Errorf("same key as a table claim: %+v own %v, %v; want the table's claim", first, own, err)
	}
	if _, _, err := s.ClaimContent(ctx, "job", "not-hex", ContentClaim{Key: "k"}); err == nil {
		t.Error("claim with a bad hash: no error")
	}
}

func TestSameWorkComparesDedup(t *testing.T) {
	base := Spec{ID: "j", Input: "in", Output: "out", Task: "caption", ShardSize: 10}
	with := base
	with.Dedup = &Dedup{Scope: "j"}
	same := base
	same.Dedup = &Dedup{Scope: "j"}
	table := base
	table.Dedup = &Dedup{Scope: "j", Table: "old.parquet"}
	if base.SameWork(with) || !with.SameWork(same) || with.SameWork(table) || !base.SameWork(base) {
		t.Error("SameWork does not tell dedup settings apart")
	}
}
