package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/worker"
	"blipflow/sharding"
	"blipflow/storage"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(ctx context.Context, location string) (storage.Store, error) {
	return storage.Open(ctx, location, storage.Config{})
}

// TestLargeShardsAndResubmit publishes shards too big for one message (their
// key lists go to the output store), re-submits the job (nothing is
// published twice), runs a worker and writes the manifest.
func TestLargeShardsAndResubmit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: filepath.Join(dir, "nats"), MaxPayload: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	conn, err := node.Dial(ctx, srv.URL(), "coordinator-test", queue.Config{}, jobstate.Config{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.NC.Close()
	in, err := openStore(ctx, filepath.Join(dir, "in"))
	if err != nil {
		t.Fatal(err)
	}
	const images = 1100
	for i := range images {
		// Empty files: listed, then error rows when decoded.
		if err := in.Write(ctx, fmt.Sprintf("a-rather-long-folder-name/%06d.jpg", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	coord, err := New(Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: openStore, Log: quiet(), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Input: in.URL(), Output: filepath.Join(dir, "out"), Task: pipeline.Task{Embed: true}, ShardSize: 1000}
	spec, err := coord.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if spec.ID != JobID(req) || !spec.Published || spec.Shards != 2 || spec.Images != images {
		t.Fatalf("spec %+v", spec)
	}
	if _, err := coord.Submit(ctx, req); err != nil {
		t.Fatal(err)
	}
	stream, err := conn.JS.Stream(ctx, conn.Queue.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages after two submits (%v), want 2", info.State.Msgs, err)
	}
	first, err := stream.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	task, err := queue.DecodeShardTask(first.Data)
	if err != nil || task.KeysRef == "" || task.Keys != nil || task.Images != 1000 {
		t.Fatalf("first shard message %+v, %v; want its 1000 keys behind keys_ref", task, err)
	}

	w, err := worker.New(worker.Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, Model: &pipeline.NopModel{},
		OpenStore: openStore, BatchSize: 32, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = w.Run(wctx) }()
	var snapshots int
	st, err := coord.Follow(ctx, spec.ID, func(Status) { snapshots++ })
	if err != nil {
		t.Fatal(err)
	}
	if snapshots == 0 || !st.Complete() || st.Rows != images || st.ErrorRows != images {
		t.Fatalf("status %+v after %d snapshots", st.Progress, snapshots)
	}
	m, err := coord.Finish(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[0].Rows != 1000 || m.Files[1].Rows != 100 || m.Task != pipeline.TaskEmbed {
		t.Errorf("manifest %+v", m)
	}
	if spec, _ := conn.Jobs.Spec(ctx, spec.ID); !spec.Finished {
		t.Error("job not marked finished")
	}
	// Work-queue retention: acknowledged shards are gone.
	if info, _ := stream.Info(ctx); info.State.Msgs != 0 {
		t.Errorf("stream still holds %d messages", info.State.Msgs)
	}
}

func TestJobIDDependsOnTheWork(t *testing.T) {
	base := Request{Input: "s3://b/in", Output: "s3://b/out", Task: pipeline.Task{Caption: true}, ShardSize: 100}
	variants := []Request{base, base, base, base, base}
	variants[1].Input = "s3://b/other"
	variants[2].Task.Prompt = "a photo of"
	variants[3].ShardSize = 50
	variants[4].Filter = sharding.Filter{MinSize: 1}
	seen := map[string]int{}
	for i, r := range variants {
		id := JobID(r)
		if err := sharding.ValidID(id); err != nil {
			t.Error(err)
		}
		if j, dup := seen[id]; dup {
			t.Errorf("variants %d and %d share job id %s", j, i, id)
		}
		seen[id] = i
	}
	if JobID(base) != JobID(base) {
		t.Error("JobID is not deterministic")
	}
}
