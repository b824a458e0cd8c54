package worker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/schemas"
	"blipflow/storage"
)

// fixture is a queue, a job state store and a dataset in a temp folder.
type fixture struct {
	conn   *node.Conn
	in     storage.Store
	output string
}

func newFixture(t *testing.T, qcfg queue.Config, images int) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	conn, err := node.Dial(ctx, srv.URL(), "worker-test", qcfg, jobstate.Config{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.NC.Close)
	in, err := storage.Open(ctx, filepath.Join(dir, "in"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Write(ctx, in, images, 16, 16); err != nil {
		t.Fatal(err)
	}
	return &fixture{conn: conn, in: in, output: filepath.Join(dir, "out")}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// submit registers a job and publishes one shard per key list.
func (f *fixture) submit(t *testing.T, job string, shards map[string][]string) {
	t.Helper()
	ctx := context.Background()
	_, err := f.conn.Jobs.CreateSpec(ctx, jobstate.Spec{ID: job, Input: f.in.URL(), Output: f.output, Task: pipeline.TaskCaption,
		ShardSize: 10, Published: true, Shards: len(shards)})
	if err != nil {
		t.Fatal(err)
	}
	for id, keys := range shards {
		if _, err := f.conn.Queue.Publish(ctx, queue.ShardTask{Job: job, Shard: id, Keys: keys, Images: len(keys)}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) worker(t *testing.T, model pipeline.Model, cfg Config) *Worker {
	t.Helper()
	cfg.JS, cfg.Queue, cfg.Jobs, cfg.Model, cfg.Log = f.conn.JS, f.conn.Queue, f.conn.Jobs, model, quiet()
	cfg.OpenStore = func(ctx context.Context, location string) (storage.Store, error) {
		return storage.Open(ctx, location, storage.Config{})
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// waitStates polls the job's shard states until done returns true.
func (f *fixture) waitStates(t *testing.T, job string, done func(map[string]jobstate.ShardState) bool) map[string]jobstate.ShardState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		states, err := f.conn.Jobs.Shards(context.Background(), job)
		if err == nil && done(states) {
			return states
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: states %+v", job, states)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPoisonedShardFailsAlone checks that a batch failure (the model
// broken, not an image) in a batch mixing two shards fails only the shard
// that holds the poisoned key, and that on its last delivery it is
// dead-lettered.
func TestPoisonedShardFailsAlone(t *testing.T) {
	f := newFixture(t, queue.Config{MaxDeliver: 1}, 8)
	if err := f.in.Write(context.Background(), "poison.png", mustPNG(t)); err != nil {
		t.Fatal(err)
	}
	f.submit(t, "mixed", map[string][]string{
		"clean":  {synth.Key(0), synth.Key(1), synth.Key(2), synth.Key(3)},
		"poison": {synth.Key(4), "poison.png", synth.Key(5)},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := f.worker(t, &pipeline.NopModel{FailBatchOn: "poison"}, Config{BatchSize: 16, Concurrency: 2, BatchWait: 200 * time.Millisecond})
	go func() { _ = w.Run(ctx) }()
	states := f.waitStates(t, "mixed", func(s map[string]jobstate.ShardState) bool { return len(s) == 2 })
	if st := states["clean"]; st.State != jobstate.StateDone || st.Rows != 4 || st.ErrorRows != 0 {
		t.Errorf("clean shard: %+v", st)
	}
	if st := states["poison"]; st.State != jobstate.StateFailed || st.Deliveries != 1 {
		t.Errorf("poisoned shard: %+v", st)
	}
	letters, err := f.conn.Queue.DeadLetters(context.Background(), "mixed")
	if err != nil || len(letters) != 1 || letters[0].Shard != "poison" {
		t.Errorf("dead letters %+v, %v", letters, err)
	}
	out, err := storage.Open(context.Background(), f.output, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Stat(context.Background(), ShardFile("mixed", "clean")); err != nil {
		t.Errorf("clean shard output: %v", err)
	}
	if _, err := out.Stat(context.Background(), ShardFile("mixed", "poison")); err == nil {
		t.Error("poisoned shard has an output file")
	}
}

// TestPoisonedImageGetsErrorRow checks per-image isolation: the model
// fails on one image of a batch mixing two shards; that image gets an
// error row naming the failure and every other image its result, in one
// delivery.
func TestPoisonedImageGetsErrorRow(t *testing.T) {
	f := newFixture(t, queue.Config{MaxDeliver: 1}, 8)
	if err := f.in.Write(context.Background(), "poison.png", mustPNG(t)); err != nil {
		t.Fatal(err)
	}
	f.submit(t, "isolated", map[string][]string{
		"clean":  {synth.Key(0), synth.Key(1), synth.Key(2), synth.Key(3)},
		"poison": {synth.Key(4), "poison.png", synth.Key(5)},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	model := &pipeline.NopModel{FailOn: "poison"}
	w := f.worker(t, model, Config{BatchSize: 16, Concurrency: 2, BatchWait: 200 * time.Millisecond})
	go func() { _ = w.Run(ctx) }()
	states := f.waitStates(t, "isolated", func(s map[string]jobstate.ShardState) bool { return len(s) == 2 })
	if st := states["clean"]; st.State != jobstate.StateDone || st.Rows != 4 || st.ErrorRows != 0 {
		t.Errorf("clean shard: %+v", st)
	}
	if st := states["poison"]; st.State != jobstate.StateDone || st.Rows != 3 || st.ErrorRows != 1 || st.Deliveries != 1 {
		t.Errorf("poisoned shard: %+v", st)
	}
	out, err := storage.Open(context.Background(), f.output, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := out.Read(context.Background(), ShardFile("isolated", "poison"))
	if err != nil {
		t.Fatal(err)
	}
	_, rows, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		switch {
		case r.Key == "poison.png":
			if !strings.Contains(r.Error, "model:") || !strings.Contains(r.Error, "poisoned key") {
				t.Errorf("poisoned row error %q", r.Error)
			}
		case r.Error != "" || len(r.Captions) != 1:
			t.Errorf("row %s: error %q, captions %v", r.Key, r.Error, r.Captions)
		}
	}
}

// TestStopHandsShardsBack stops a worker mid-shard with a short drain
// timeout: the shard goes back to the queue at once (no ack wait) and
// another worker finishes it.
func TestStopHandsShardsBack(t *testing.T) {
	f := newFixture(t, queue.Config{}, 12)
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = synth.Key(i)
	}
	f.submit(t, "handback", map[string][]string{"slow": keys})
	slow := f.worker(t, &pipeline.NopModel{Delay: 200 * time.Millisecond}, Config{BatchSize: 1, DrainTimeout: 50 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- slow.Run(ctx) }()
	f.waitInFlight(t, 10*time.Second)
	stop()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop")
	}
	// Handed back: another worker gets it long before the 30s ack wait.
	if st := f.finishElsewhere(t, "handback", "slow"); st.Rows != 12 || st.Deliveries != 2 {
		t.Errorf("shard state %+v; want 12 rows on the second delivery", st)
	}
}

// waitInFlight waits until the queue has one shard delivered and not yet
// acknowledged, failing the test after within.
func (f *fixture) waitInFlight(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, inFlight, _ := f.conn.Queue.Backlog(context.Background()); inFlight == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the shard was never delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finishElsewhere starts another worker (a nop model) and returns the state
// of job's shard once it is done.
func (f *fixture) finishElsewhere(t *testing.T, job, shard string) jobstate.ShardState {
	t.Helper()
	w := f.worker(t, &pipeline.NopModel{}, Config{})
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go func() { _ = w.Run(ctx) }()
	states := f.waitStates(t, job, func(s map[string]jobstate.ShardState) bool { return s[shard].State == jobstate.StateDone })
	return states[shard]
}

func mustPNG(t *testing.T) []byte {
	t.Helper()
	data, err := synth.PNG(7, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRedeliveryDelay(t *testing.T) {
	tests := []struct {
		delivered uint64
		want      time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {10, 30 * time.Second}}
	for _, tt := range tests {
		// The nominal delay, with the policy's ±50% jitter.
		if got := redeliveryDelay(time.Second, tt.delivered); got < tt.want/2 || got > tt.want*3/2 {
			t.Errorf("redeliveryDelay(1s, %d) = %v, want %v ± 50%%", tt.delivered, got, tt.want)
		}
	}
}

// stubbornModel is a model whose runs ignore cancellation (as a model
// mid-forward-pass does) and take long.
type stubbornModel struct {
	pipeline.NopModel
	delay time.Duration
}

func (m *stubbornModel) Run(ctx context.Context, task pipeline.Task, batch []pipeline.Image) ([]pipeline.Result, error) {
	time.Sleep(m.delay)
	return m.NopModel.Run(context.Background(), task, batch)
}

// TestDrainHandsBackWithinSeconds stops a worker, with the default 20s
// drain timeout, while its model is in a 30s run that ignores
// cancellation: the shard is handed back at once and the worker returns
// within seconds, not after the run or the drain timeout.
func TestDrainHandsBackWithinSeconds(t *testing.T) {
	f := newFixture(t, queue.Config{}, 4)
	keys := []string{synth.Key(0), synth.Key(1), synth.Key(2), synth.Key(3)}
	f.submit(t, "drain", map[string][]string{"busy": keys})
	busy := f.worker(t, &stubbornModel{delay: 30 * time.Second}, Config{BatchSize: 4})
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- busy.Run(ctx) }()
	f.waitInFlight(t, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // into the model run
	stop()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(12 * time.Second):
		t.Fatal("the worker waited for the model run or the drain timeout")
	}
	if st := f.finishElsewhere(t, "drain", "busy"); st.Rows != 4 || st.Deliveries != 2 {
		t.Errorf("shard state %+v; want 4 rows on the second delivery", st)
	}
}
