package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDoRetriesWithLoggedDelays(t *testing.T) {
	p := Policy{Attempts: 4, Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}
	var delays []time.Duration
	var gaps []time.Duration
	last := time.Now()
	calls := 0
	boom := errors.New("boom")
	err := p.Do(context.Background(), "op", func() error {
		now := time.Now()
		if calls > 0 {
			gaps = append(gaps, now.Sub(last))
		}
		last = now
		calls++
		return boom
	}, func(_ error, d time.Duration) { delays = append(delays, d) })
	if !errors.Is(err, boom) || calls != 4 {
		t.Fatalf("err %v after %d calls, want boom after 4", err, calls)
	}
	if len(delays) != 3 {
		t.Fatalf("notified %d delays, want 3", len(delays))
	}
	nominal := []time.Duration{10, 20, 40}
	for i, d := range delays {
		lo, hi := nominal[i]*time.Millisecond/2, nominal[i]*time.Millisecond*3/2
		if d < lo || d > hi {
			t.Errorf("delay %d = %s, want within [%s, %s]", i, d, lo, hi)
		}
		// The real gap is at least the reported delay.
		if gaps[i] < d {
			t.Errorf("gap %d = %s shorter than the reported delay %s", i, gaps[i], d)
		}
	}
}

func TestDoStopsOnPermanent(t *testing.T) {
	p := Policy{Attempts: 5, Initial: time.Millisecond, Max: time.Millisecond}
	calls := 0
	cause := errors.New("unsupported")
	err := p.Do(context.Background(), "op", func() error { calls++; return Permanent(cause) }, nil)
	if calls != 1 || !errors.Is(err, cause) || !IsPermanent(err) {
		t.Fatalf("calls %d err %v: want one call and a permanent error wrapping the cause", calls, err)
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{Initial: time.Hour, Max: time.Hour}
	calls := 0
	err := p.Do(ctx, "op", func() error { calls++; cancel(); return errors.New("x") }, nil)
	if calls != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("calls %d err %v", calls, err)
	}
}

func TestJitterVaries(t *testing.T) {
	b := Policy{Initial: time.Second, Max: time.Second}.BackOff()
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[b.NextBackOff()] = true
	}
	if len(seen) < 2 {
		t.Fatal("delays are not jittered")
	}
}
