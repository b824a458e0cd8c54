// Package retry is the project's one retry policy: exponential backoff with
// jitter (github.com/cenkalti/backoff/v5), a bounded number of attempts,
// errors marked permanent never retried, and every wait reported with the
// delay that is actually slept.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is an exponential backoff: the first delay is Initial, each next
// one doubles up to Max, and every delay is drawn uniformly within ±Jitter
// of its nominal value.
type Policy struct {
	// Attempts is the number of tries in all; zero means until ctx ends.
	Attempts int
	// Initial is the nominal first delay.
	Initial time.Duration
	// Max caps the nominal delay.
	Max time.Duration
	// Jitter is the randomisation factor in [0,1) (0 means 0.5).
	Jitter float64
}

// BackOff returns a fresh backoff of the policy, for loops that are not a
// single operation (a pull loop's pauses); NextBackOff gives the delay to
// wait and Reset starts over.
func (p Policy) BackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = max(p.Max, p.Initial)
	b.Multiplier = 2
	b.RandomizationFactor = p.Jitter
	if b.RandomizationFactor <= 0 || b.RandomizationFactor >= 1 {
		b.RandomizationFactor = 0.5
	}
	b.Reset()
	return b
}

// Notify is told of each failed attempt and the delay before the next.
type Notify func(err error, delay time.Duration)

// Do runs op until it succeeds, returns a permanent error, the attempts
// run out or ctx ends. what names the operation in the final error. The
// returned error wraps op's last error (unmarked if it was permanent).
func (p Policy) Do(ctx context.Context, what string, op func() error, notify Notify) error {
	opts := []backoff.RetryOption{backoff.WithBackOff(p.BackOff()), backoff.WithMaxElapsedTime(0)}
	if p.Attempts > 0 {
		opts = append(opts, backoff.WithMaxTries(uint(p.Attempts)))
	}
	if notify != nil {
		opts = append(opts, backoff.WithNotify(backoff.Notify(notify)))
	}
	attempts := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		err := op()
		if err != nil && IsPermanent(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, opts...)
	switch {
	case err == nil:
		return nil
	case IsPermanent(err) || ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, err)
	default:
		return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempts, err)
	}
}

// Wait sleeps for d or until ctx ends, reporting ctx's error in that case.
func Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// PermanentError marks an error no retry can fix: an unsupported setting,
// a refused address, a missing object. Its message is the wrapped error's.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent (nil stays nil).
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &PermanentError{Err: err}
}

// Permanentf is Permanent(fmt.Errorf(format, args...)).
func Permanentf(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// IsPermanent reports whether err or one it wraps is marked permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
