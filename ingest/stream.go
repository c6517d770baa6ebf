package ingest

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// StreamOptions tune Stream.
type StreamOptions struct {
	// BatchSize is the most events published in one call (default 500).
	BatchSize int
	// Linger is how long a partial batch waits for more input before it is
	// published anyway, so slow input is not held back (default 20ms).
	Linger time.Duration
	// Backoff paces retries of a failed batch; retries go on until ctx
	// ends or the failure is permanent.
	Backoff broker.Backoff
	// OnRetry is told of each failed attempt.
	OnRetry func(attempt int, err error, wait time.Duration)
	// OnPublished is told the running total after each batch.
	OnPublished func(total int)
}

// Stream reads events from r and publishes them to b in batches, in input
// order. It returns the number of events published (confirmed by b). On a
// bad line it first publishes every earlier line, then returns the
// *LineError; on a broker failure it returns the error, and published
// counts only confirmed events.
func Stream(ctx context.Context, r *Reader, b broker.Broker, o StreamOptions) (published int, err error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type item struct {
		ev  event.Event
		err error
	}
	items := make(chan item, o.BatchSize)
	go func() {
		defer close(items)
		for {
			ev, err := r.Next()
			select {
			case items <- item{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	batch := make([]event.Event, 0, o.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := broker.PublishRetry(ctx, b, batch, o.Backoff, o.OnRetry); err != nil {
			return err
		}
		published += len(batch)
		batch = batch[:0]
		if o.OnPublished != nil {
			o.OnPublished(published)
		}
		return nil
	}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var it item
		var ok bool
		if len(batch) == 0 {
			it, ok = <-items
		} else {
			select {
			case it, ok = <-items:
			case <-linger.C:
				if err := flush(); err != nil {
					return published, err
				}
				continue
			}
		}
		if !ok {
			return published, flush()
		}
		if it.err != nil {
			if ferr := flush(); ferr != nil {
				return published, ferr
			}
			if errors.Is(it.err, io.EOF) {
				return published, nil
			}
			return published, it.err
		}
		if len(batch) == 0 {
			linger.Reset(o.Linger)
		}
		batch = append(batch, it.ev)
		if len(batch) >= o.BatchSize {
			linger.Stop()
			if err := flush(); err != nil {
				return published, err
			}
		}
	}
}
