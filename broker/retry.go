package broker

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/parleyhq/parley/event"
)

// Backoff is an exponential retry schedule with jitter.
type Backoff struct {
	// Initial is the first wait (default 100ms).
	Initial time.Duration
	// Max caps the wait (default 10s).
	Max time.Duration
}

// Delay returns the wait before retry number attempt (1-based), with up to
// 20% jitter so that many clients do not retry in lockstep.
func (b Backoff) Delay(attempt int) time.Duration {
	initial, max := b.Initial, b.Max
	if initial <= 0 {
		initial = 100 * time.Millisecond
	}
	if max <= 0 {
		max = 10 * time.Second
	}
	d := initial
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// PublishRetry publishes evs, retrying failures with backoff until it
// succeeds, ctx ends, or the error is permanent (ErrPermanent, ErrClosed).
// onRetry, if set, is told of each failure before the wait.
func PublishRetry(ctx context.Context, b Broker, evs []event.Event, bo Backoff, onRetry func(attempt int, err error, wait time.Duration)) error {
	for attempt := 1; ; attempt++ {
		err := b.Publish(ctx, evs...)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrPermanent) || errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return err
		}
		wait := bo.Delay(attempt)
		if onRetry != nil {
			onRetry(attempt, err, wait)
		}
		if !Sleep(ctx, wait) {
			return errors.Join(err, ctx.Err())
		}
	}
}

// Sleep waits d or until ctx ends, reporting whether the wait completed:
// the wait between attempts of the brokers and the spool's workers.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
