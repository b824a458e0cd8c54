package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/pipeline/worker"
	"blipflow/schemas"
	"blipflow/storage"
)

// retryFixture is an embedded NATS, a coordinator and an input folder.
type retryFixture struct {
	conn  *node.Conn
	coord *Coordinator
	in    storage.Store
	dir   string
}

func newRetryFixture(t *testing.T, ctx context.Context) *retryFixture {
	t.Helper()
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	conn, err := node.Dial(ctx, srv.URL(), "retry-test", queue.Config{MaxDeliver: 1}, jobstate.Config{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.NC.Close)
	in, err := openStore(ctx, filepath.Join(dir, "in"))
	if err != nil {
		t.Fatal(err)
	}
	coord, err := New(Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: openStore, Log: quiet(), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &retryFixture{conn: conn, coord: coord, in: in, dir: dir}
}

// runWorker runs a worker with model until the test ends or stop is called.
func (f *retryFixture) runWorker(t *testing.T, model pipeline.Model) (stop func()) {
	t.Helper()
	w, err := worker.New(worker.Config{JS: f.conn.JS, Queue: f.conn.Queue, Jobs: f.conn.Jobs, Model: model,
		OpenStore: openStore, BatchSize: 4, RetryDelay: 10 * time.Millisecond, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// rowsByKey reads every file the manifest lists and counts rows by key.
func rowsByKey(t *testing.T, ctx context.Context, m Manifest) map[string][]schemas.Row {
	t.Helper()
	out, err := openStore(ctx, m.Output)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]schemas.Row{}
	for _, f := range m.Files {
		data, err := out.Read(ctx, f.Path)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			rows[r.Key] = append(rows[r.Key], r)
		}
	}
	return rows
}

// TestRetryReplacesFailures runs a job with corrupt images (error rows)
// and a poisoned one (a dead-lettered shard), fixes the files, retries
// with a model that does not fail, and checks every image is in the
// manifest's files exactly once and without error; a second retry has
// nothing to do.
func TestRetryReplacesFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newRetryFixture(t, ctx)
	const images = 20
	if err := synth.Write(ctx, f.in, images, 16, 16); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, images+3)
	for i := range images {
		keys = append(keys, synth.Key(i))
	}
	good, err := synth.PNG(4242, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	broken := []string{"a/broken-a.png", "a/broken-b.png"}
	for _, key := range broken {
		if err := f.in.Write(ctx, key, good[:30]); err != nil {
			t.Fatal(err)
		}
	}
	poison := "z/poison.png"
	if err := f.in.Write(ctx, poison, good); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, append(broken, poison)...)

	stop := f.runWorker(t, &pipeline.NopModel{FailBatchOn: "poison"})
	req := Request{Input: f.in.URL(), Output: filepath.Join(f.dir, "out"), Task: pipeline.Task{Caption: true}, ShardSize: 8}
	spec, err := f.coord.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.coord.Follow(ctx, spec.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := f.coord.Finish(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if first.Failed != 1 || first.ErrorRows != len(broken) {
		t.Fatalf("first run: %d failed shards, %d error rows; want 1 and %d", first.Failed, first.ErrorRows, len(broken))
	}
	stop()

	for _, key := range broken {
		if err := f.in.Write(ctx, key, good); err != nil {
			t.Fatal(err)
		}
	}
	f.runWorker(t, &pipeline.NopModel{})
	m, round, err := f.coord.Retry(ctx, spec.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	lost := first.Images - first.Rows // images of the dead-lettered shard
	if round.Round != 1 || !round.Finished || round.Images != len(broken)+lost || round.Fixed != round.Images || round.Failing != 0 {
		t.Errorf("round %+v; want round 1 fixing %d images", round, len(broken)+lost)
	}
	if m.Failed != 0 || m.ErrorRows != 0 || m.Rows != len(keys) || len(m.Retries) != 1 || m.Retries[0] != round {
		t.Errorf("manifest after retry: %d failed, %d rows (%d errors), retries %+v", m.Failed, m.Rows, m.ErrorRows, m.Retries)
	}
	rows := rowsByKey(t, ctx, m)
	for _, key := range keys {
		if got := rows[key]; len(got) != 1 || got[0].Error != "" || len(got[0].Captions) != 1 {
			t.Errorf("%s: rows %+v; want one without error", key, got)
		}
	}
	if len(rows) != len(keys) {
		t.Errorf("%d keys in the files, want %d", len(rows), len(keys))
	}
	out, err := openStore(ctx, req.Output)
	if err != nil {
		t.Fatal(err)
	}
	var leftovers []string
	_ = out.List(ctx, RoundJobID(spec.ID, 1)+"/", func(o storage.Object) error { leftovers = append(leftovers, o.Key); return nil })
	if len(leftovers) != 0 {
		t.Errorf("merged round files left behind: %v", leftovers)
	}
	if _, err := out.Stat(ctx, RetryPlanKey(spec.ID, 1)); err != nil {
		t.Errorf("retry plan: %v", err)
	}
	if _, _, err := f.coord.Retry(ctx, spec.ID, nil); !errors.Is(err, ErrNothingToRetry) {
		t.Errorf("second retry: %v, want ErrNothingToRetry", err)
	}
}

// TestRetryNeedsACompleteJob refuses to retry a job that is still running.
func TestRetryNeedsACompleteJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := newRetryFixture(t, ctx)
	if err := synth.Write(ctx, f.in, 3, 8, 8); err != nil {
		t.Fatal(err)
	}
	spec, err := f.coord.Submit(ctx, Request{Input: f.in.URL(), Output: filepath.Join(f.dir, "out"), Task: pipeline.Task{Caption: true}, ShardSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.coord.Retry(ctx, spec.ID, nil); err == nil {
		t.Error("retry of a running job: no error")
	}
}

func TestMergeRows(t *testing.T) {
	row := func(key, err string) schemas.Row { return schemas.Row{Key: key, Error: err} }
	tests := []struct {
		name         string
		old, retried []schemas.Row
		want         []schemas.Row
	}{
		{"replace errors in place",
			[]schemas.Row{row("a", ""), row("b", "decode: x"), row("c", "read: y")},
			[]schemas.Row{row("c", ""), row("b", "")},
			[]schemas.Row{row("a", ""), row("b", ""), row("c", "")}},
		{"still failing replaces too",
			[]schemas.Row{row("a", "decode: x")},
			[]schemas.Row{row("a", "decode: z")},
			[]schemas.Row{row("a", "decode: z")}},
		{"good rows are kept",
			[]schemas.Row{row("a", "")},
			[]schemas.Row{row("a", "model: late")},
			[]schemas.Row{row("a", "")}},
		{"dead-lettered shard: all new",
			nil,
			[]schemas.Row{row("x", ""), row("y", "")},
			[]schemas.Row{row("x", ""), row("y", "")}},
	}
	for _, tt := range tests {
		got := MergeRows(tt.old, tt.retried)
		if !slices.EqualFunc(got, tt.want, func(a, b schemas.Row) bool { return a.Key == b.Key && a.Error == b.Error }) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDedupTableSeedsClaims submits a job against an earlier table: its
// processed rows' contents are claimed for the table's keys.
func TestDedupTableSeedsClaims(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := newRetryFixture(t, ctx)
	if err := synth.Write(ctx, f.in, 2, 8, 8); err != nil {
		t.Fatal(err)
	}
	sha := func(i int) string { return fmt.Sprintf("%064x", i) }
	rows := []schemas.Row{
		{Key: "old/1.png", SHA256: sha(1)},
		{Key: "old/2.png", SHA256: sha(2), Error: "decode: bad"},
		{Key: "old/3.png", SHA256: sha(1), Extra: map[string]string{worker.ExtraDuplicateOf: "old/1.png"}},
	}
	var buf bytes.Buffer
	if err := schemas.WriteRows(&buf, schemas.Meta{Model: "nop", Task: "caption"}, rows); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(f.dir, "earlier", "table.parquet")
	tables, err := openStore(ctx, filepath.Dir(table))
	if err != nil {
		t.Fatal(err)
	}
	if err := tables.Write(ctx, "table.parquet", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	req := Request{Input: f.in.URL(), Output: filepath.Join(f.dir, "out"), Task: pipeline.Task{Caption: true}, ShardSize: 2, DedupTable: table}
	spec, err := f.coord.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Dedup == nil || spec.Dedup.Table != table || spec.Dedup.Scope != spec.ID {
		t.Fatalf("spec dedup %+v", spec.Dedup)
	}
	claim, own, err := f.conn.Jobs.ClaimContent(ctx, spec.ID, sha(1), jobstate.ContentClaim{Key: "new.png"})
	if err != nil || own || claim != (jobstate.ContentClaim{Key: "old/1.png", Table: table}) {
		t.Errorf("claim of the table's content: %+v own %v, %v", claim, own, err)
	}
	if _, own, err := f.conn.Jobs.ClaimContent(ctx, spec.ID, sha(2), jobstate.ContentClaim{Key: "new.png"}); err != nil || !own {
		t.Errorf("content of an error row was claimed (own %v, %v)", own, err)
	}
	if JobID(req) == JobID(Request{Input: req.Input, Output: req.Output, Task: req.Task, ShardSize: req.ShardSize}) {
		t.Error("dedup does not change the job id")
	}
}
