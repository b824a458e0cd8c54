package jobstate

import (
	"context"
	"fmt"
	"testing"
)

// TestTallyReplacesStates checks that a shard's later states replace its
// earlier ones in the sums, and that WebDataset jobs (no planned image
// count) count the images the workers report.
func TestTallyReplacesStates(t *testing.T) {
	tally := NewTally()
	tally.Apply("a", ShardState{State: StateRetrying, Images: 10})
	tally.Apply("b", ShardState{State: StateDone, Rows: 7, ErrorRows: 2, Images: 7})
	tally.Apply("a", ShardState{State: StateDone, Rows: 10, ErrorRows: 1, Images: 10, Deliveries: 2})
	tally.Apply("c", ShardState{State: StateFailed, Images: 5})
	got := tally.Progress(Spec{Published: true, Shards: 3})
	want := Progress{Published: true, Shards: 3, Done: 2, Failed: 1, Images: 22, Rows: 17, ErrorRows: 3, Redelivered: 1}
	if got != want {
		t.Errorf("Progress = %+v, want %+v", got, want)
	}
	if !got.Complete() {
		t.Error("not complete")
	}
	if p := tally.Progress(Spec{Published: true, Shards: 3, Images: 30}); p.Images != 30 {
		t.Errorf("planned images %d, want 30", p.Images)
	}
}

// TestWatchJobSeesChanges watches a job's shards: the initial states, the
// end-of-initial marker, then later changes only.
func TestWatchJobSeesChanges(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	for i := range 5 {
		if err := s.PutShard(ctx, "j", fmt.Sprint(i), ShardState{State: StateRetrying, Images: 4}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := s.WatchJob(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	tally := NewTally()
	for entry := range w.Updates() {
		if entry == nil {
			break
		}
		u, err := w.Decode(entry)
		if err != nil {
			t.Fatal(err)
		}
		tally.Apply(u.Shard, u.State)
	}
	if p := tally.Progress(Spec{}); p.Retrying != 5 || p.Images != 20 {
		t.Fatalf("initial progress %+v", p)
	}
	if err := s.PutShard(ctx, "j", "3", ShardState{State: StateDone, Rows: 4, Images: 4}); err != nil {
		t.Fatal(err)
	}
	u, err := w.Decode(<-w.Updates())
	if err != nil || u.Shard != "3" || u.State.State != StateDone {
		t.Fatalf("update %+v, %v", u, err)
	}
	tally.Apply(u.Shard, u.State)
	if p := tally.Progress(Spec{}); p.Retrying != 4 || p.Done != 1 || p.Rows != 4 {
		t.Errorf("progress after the change %+v", p)
	}
}
