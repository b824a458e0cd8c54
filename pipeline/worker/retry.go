package worker

import (
	"context"
	"errors"
	"time"

	"blipflow/internal/retry"
	"blipflow/storage"
)

// retry runs op with the project's retry policy (internal/retry) until it
// succeeds, fails permanently (a missing object, an error marked
// permanent), the attempts run out or ctx ends. Each retry is logged with
// the delay actually waited.
func (w *Worker) retry(ctx context.Context, what string, op func() error) error {
	return w.retryWith(ctx, w.cfg.Retry, what, op)
}

// retryStore is retry for an operation on store: once only when the
// store retries by itself (S3), so that retries are never nested.
func (w *Worker) retryStore(ctx context.Context, store storage.Store, what string, op func() error) error {
	r := w.cfg.Retry
	if storage.SelfRetrying(store) {
		r.Attempts = 1
	}
	return w.retryWith(ctx, r, what, op)
}

func (w *Worker) retryWith(ctx context.Context, r Retry, what string, op func() error) error {
	return r.policy().Do(ctx, what, func() error {
		err := op()
		if errors.Is(err, storage.ErrNotExist) {
			return retry.Permanent(err)
		}
		return err
	}, func(err error, delay time.Duration) {
		w.cfg.Log.Warn(what+" failed; retrying", "err", err, "delay", delay)
	})
}

func (r Retry) policy() retry.Policy {
	return retry.Policy{Attempts: r.Attempts, Initial: r.Initial, Max: r.Max}
}

// redeliveryDelay is the wait before delivery n+1 of a failed shard: the
// retry policy's delay for attempt n, base doubling up to 30 times base,
// with its jitter.
func redeliveryDelay(base time.Duration, delivered uint64) time.Duration {
	b := retry.Policy{Initial: base, Max: 30 * base}.BackOff()
	delay := b.NextBackOff()
	for i := uint64(1); i < delivered; i++ {
		delay = b.NextBackOff()
	}
	return delay
}
