package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"blipflow/storage"
)

// do runs op until it succeeds, fails permanently (a missing object), the
// attempts run out or ctx ends.
func (r Retry) do(ctx context.Context, what string, op func() error) error {
	delay := r.Initial
	var err error
	for attempt := 1; ; attempt++ {
		if err = op(); err == nil {
			return nil
		}
		if errors.Is(err, storage.ErrNotExist) || ctx.Err() != nil {
			return err
		}
		if attempt >= r.Attempts {
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, r.Max)
	}
}

// redeliveryDelay is the wait before delivery n+1 of a failed shard.
func redeliveryDelay(base time.Duration, delivered uint64) time.Duration {
	delay := base
	for i := uint64(1); i < delivered && delay < 30*base; i++ {
		delay *= 2
	}
	return min(delay, 30*base)
}
