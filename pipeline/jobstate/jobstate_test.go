package jobstate

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"blipflow/pipeline/natsembed"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSpecLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.Spec(ctx, "missing"); !strings.Contains(err.Error(), ErrNoJob.Error()) {
		t.Errorf("Spec(missing) = %v, want ErrNoJob", err)
	}
	spec := Spec{ID: "j", Input: "s3://b/in", Output: "s3://b/out", Task: "caption", ShardSize: 10}
	got, err := s.CreateSpec(ctx, spec)
	if err != nil || got.ID != "j" {
		t.Fatalf("CreateSpec = %+v, %v", got, err)
	}
	if _, err := s.UpdateSpec(ctx, "j", func(sp *Spec) { sp.Published, sp.Shards = true, 3 }); err != nil {
		t.Fatal(err)
	}
	// The same work again returns the stored (published) spec.
	again, err := s.CreateSpec(ctx, spec)
	if err != nil || !again.Published || again.Shards != 3 {
		t.Errorf("CreateSpec again = %+v, %v", again, err)
	}
	other := spec
	other.Task = "embed"
	if _, err := s.CreateSpec(ctx, other); err == nil {
		t.Error("CreateSpec with other work under the same id: no error")
	}
}

func TestUpdateSpecConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateSpec(ctx, Spec{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.UpdateSpec(ctx, "c", func(sp *Spec) { sp.Images++ }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if spec, _ := s.Spec(ctx, "c"); spec.Images != 8 {
		t.Errorf("after 8 concurrent increments: %d", spec.Images)
	}
}

func TestShardStates(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	put := func(shard string, st ShardState) {
		t.Helper()
		if err := s.PutShard(ctx, "j", shard, st); err != nil {
			t.Fatal(err)
		}
	}
	put("a", ShardState{State: StateRetrying, Reason: "s3 down"})
	put("a", ShardState{State: StateDone, Rows: 10, ErrorRows: 1})
	put("a", ShardState{State: StateFailed, Reason: "late dead letter"}) // must not replace done
	put("b", ShardState{State: StateFailed, Reason: "poisoned"})
	put("c", ShardState{State: StateRetrying})
	if err := s.PutShard(ctx, "other", "a", ShardState{State: StateDone, Rows: 99}); err != nil {
		t.Fatal(err)
	}
	states, err := s.Shards(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 3 || states["a"].State != StateDone || states["b"].Reason != "poisoned" {
		t.Fatalf("states %+v", states)
	}
	p := Summarize(Spec{Published: true, Shards: 3, Images: 30}, states)
	want := Progress{Published: true, Shards: 3, Done: 1, Failed: 1, Retrying: 1, Images: 30, Rows: 10, ErrorRows: 1}
	if p != want {
		t.Errorf("Summarize = %+v, want %+v", p, want)
	}
	if p.Complete() {
		t.Error("complete with a shard retrying")
	}
	put("c", ShardState{State: StateDone, Rows: 10})
	states, _ = s.Shards(ctx, "j")
	if p := Summarize(Spec{Published: true, Shards: 3}, states); !p.Complete() {
		t.Errorf("not complete: %+v", p)
	}
	if p := Summarize(Spec{Shards: 3}, states); p.Complete() {
		t.Error("complete before the plan was published")
	}
}
