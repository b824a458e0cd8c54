package coordinator

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
)

// TestFollowTalliesChangesAndSummarises follows a job whose shards finish
// while it watches: the last snapshot counts every shard once, the summary
// Follow stores gives `status` the same answer, and a job without a fresh
// summary is read shard by shard.
func TestFollowTalliesChangesAndSummarises(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	conn, err := node.Dial(ctx, srv.URL(), "follow-test", queue.Config{}, jobstate.Config{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.NC.Close()
	coord, err := New(Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: openStore, Log: quiet(), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const shards = 40
	if _, err := conn.Jobs.CreateSpec(ctx, jobstate.Spec{ID: "j", Published: true, Shards: shards, Images: 10 * shards}); err != nil {
		t.Fatal(err)
	}
	put := func(i int, st jobstate.ShardState) {
		if err := conn.Jobs.PutShard(ctx, "j", fmt.Sprintf("s%02d", i), st); err != nil {
			t.Error(err)
		}
	}
	for i := range shards / 2 {
		put(i, jobstate.ShardState{State: jobstate.StateDone, Rows: 10, Images: 10})
	}
	go func() {
		for i := shards / 2; i < shards; i++ {
			put(i, jobstate.ShardState{State: jobstate.StateRetrying, Images: 10, Reason: "boom"})
			time.Sleep(5 * time.Millisecond)
			if i == shards-1 {
				put(i, jobstate.ShardState{State: jobstate.StateFailed, Images: 10, Reason: "dead"})
			} else {
				put(i, jobstate.ShardState{State: jobstate.StateDone, Rows: 10, ErrorRows: 1, Images: 10})
			}
		}
	}()
	snapshots := 0
	st, err := coord.Follow(ctx, "j", func(Status) { snapshots++ })
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != shards-1 || st.Failed != 1 || st.Retrying != 0 || st.Rows != 10*(shards-1) || st.ErrorRows != shards/2-1 || len(st.States) != shards {
		t.Errorf("last snapshot %+v (%d states)", st.Progress, len(st.States))
	}
	if snapshots == 0 {
		t.Error("no snapshot reported")
	}
	sum, err := coord.Summary(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Progress != st.Progress || len(sum.States) != 1 || sum.States[fmt.Sprintf("s%02d", shards-1)].Reason != "dead" {
		t.Errorf("summary %+v %+v, want %+v and the failed shard", sum.Progress, sum.States, st.Progress)
	}
	// Another job, never followed: read shard by shard.
	if _, err := conn.Jobs.CreateSpec(ctx, jobstate.Spec{ID: "k", Published: true, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Jobs.PutShard(ctx, "k", "a", jobstate.ShardState{State: jobstate.StateRetrying}); err != nil {
		t.Fatal(err)
	}
	if k, err := coord.Summary(ctx, "k"); err != nil || k.Retrying != 1 || len(k.States) != 1 {
		t.Errorf("summary of an unfollowed job %+v, %v", k.Progress, err)
	}
}
