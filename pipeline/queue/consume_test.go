package queue

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestPullerTakesOneShardAtATime checks that the Puller asks the server
// for a shard only when Next is called: with shards waiting, exactly as
// many are delivered (ack pending) as were handed out.
func TestPullerTakesOneShardAtATime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, _ := startQueue(t, Config{})
	for i := range 5 {
		if _, err := q.Publish(ctx, ShardTask{Job: "j", Shard: fmt.Sprintf("s%d", i), Keys: []string{"k"}, Images: 1}); err != nil {
			t.Fatal(err)
		}
	}
	p := q.Puller()
	defer p.Stop()
	for want := 1; want <= 2; want++ {
		msg, err := p.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		task, err := DecodeShardTask(msg.Data())
		if err != nil || task.Shard != fmt.Sprintf("s%d", want-1) {
			t.Fatalf("shard %+v, %v", task, err)
		}
		time.Sleep(200 * time.Millisecond) // room for a prefetch to show
		waiting, inFlight, err := q.Backlog(ctx)
		if err != nil || inFlight != uint64(want) || waiting != uint64(5-want) {
			t.Errorf("after %d shards: %d waiting, %d in flight (%v); want %d and %d", want, waiting, inFlight, err, 5-want, want)
		}
	}
	// A canceled Next returns the context's error and leaves the Puller usable.
	short, stop := context.WithCancel(ctx)
	stop()
	if _, err := p.Next(short); err == nil {
		t.Error("Next with a canceled context: no error")
	}
	if msg, err := p.Next(ctx); err != nil {
		t.Errorf("Next after a canceled one: %v", err)
	} else if err := msg.Ack(); err != nil {
		t.Error(err)
	}
}
