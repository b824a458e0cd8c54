package queue

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"blipflow/pipeline/natsembed"
)

// startQueue runs an embedded server and sets up a queue on it.
func startQueue(t *testing.T, cfg Config) (*Queue, jetstream.JetStream) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := Connect(srv.URL(), "queue-test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Setup(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Setup(context.Background(), js, cfg); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	return q, js
}

func TestPublishDeduplicates(t *testing.T) {
	ctx := context.Background()
	q, _ := startQueue(t, Config{})
	task := ShardTask{Job: "j1", Shard: "00000-abc", Keys: []string{"a.png", "b.png"}, Images: 2}
	for i, wantDup := range []bool{false, true} {
		dup, err := q.Publish(ctx, task)
		if err != nil || dup != wantDup {
			t.Fatalf("publish %d: duplicate %v, err %v; want %v", i, dup, err, wantDup)
		}
	}
	waiting, inFlight, err := q.Backlog(ctx)
	if err != nil || waiting != 1 || inFlight != 0 {
		t.Fatalf("backlog before the consumer: %d waiting, %d in flight, %v", waiting, inFlight, err)
	}
	cons, err := q.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeShardTask(msg.Data())
	if err != nil || got.Shard != task.Shard || !slices.Equal(got.Keys, task.Keys) {
		t.Fatalf("message %+v, %v", got, err)
	}
	if _, inFlight, _ := q.Backlog(ctx); inFlight != 1 {
		t.Errorf("in flight %d, want 1", inFlight)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	// Acknowledged and gone from the work queue, but still a duplicate.
	if dup, err := q.Publish(ctx, task); err != nil || !dup {
		t.Errorf("publish after ack: duplicate %v, err %v", dup, err)
	}
}

func TestExhaustedShardIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, js := startQueue(t, Config{AckWait: 200 * time.Millisecond, MaxDeliver: 2})
	task := ShardTask{Job: "j2", Shard: "00001-def", Keys: []string{"x.png"}, Images: 1}
	if _, err := q.Publish(ctx, task); err != nil {
		t.Fatal(err)
	}
	cons, err := q.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Take both deliveries and never acknowledge: a worker that dies twice.
	for i := range 2 {
		if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	// An idle worker keeps pulling; the server reports the exhausted shard
	// when it next looks for a message to deliver.
	go func() { _, _ = cons.Next(jetstream.FetchMaxWait(5 * time.Second)) }()
	dead := make(chan DeadLetter, 1)
	go func() {
		_ = q.DeadLetterExhausted(ctx, nil, func(_ context.Context, dl DeadLetter) error {
			dead <- dl
			return nil
		})
	}()
	select {
	case dl := <-dead:
		if dl.Job != task.Job || dl.Shard != task.Shard || dl.Deliveries != 2 || !slices.Equal(dl.Task.Keys, task.Keys) {
			t.Errorf("dead letter %+v", dl)
		}
	case <-ctx.Done():
		t.Fatal("no dead letter")
	}
	letters, err := q.DeadLetters(ctx, task.Job)
	if err != nil || len(letters) != 1 || letters[0].Shard != task.Shard {
		t.Fatalf("DeadLetters = %+v, %v", letters, err)
	}
	stream, err := js.Stream(ctx, q.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shard stream still holds %d messages", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if none, err := q.DeadLetters(ctx, "other-job"); err != nil || len(none) != 0 {
		t.Errorf("DeadLetters(other-job) = %+v, %v", none, err)
	}
}

func TestBackOff(t *testing.T) {
	got := Config{AckWait: time.Second, MaxDeliver: 6}.BackOff()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("BackOff = %v, want %v", got, want)
	}
}

func TestDecodeShardTask(t *testing.T) {
	tests := []struct {
		data    string
		wantErr bool
	}{
		{`{"job":"j","shard":"s","keys":["a"],"images":1}`, false},
		{`{"job":"j","shard":"s","keys_ref":"j/shardlists/s.json","images":5}`, false},
		{`{"job":"j","shard":"s","images":0}`, false},
		{`{"job":"j","shard":"s","images":3}`, true},
		{`{"shard":"s"}`, true},
		{`not json`, true},
	}
	for _, tt := range tests {
		if _, err := DecodeShardTask([]byte(tt.data)); (err != nil) != tt.wantErr {
			t.Errorf("DecodeShardTask(%s): err %v, want error %v", tt.data, err, tt.wantErr)
		}
	}
}
