package spool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// The exactly-once side of a worker, for brokers that implement
// broker.Positioned. The worker's stream at the broker is named by the
// spool's identity and the broker's name; its position is the seq after
// the last event the destination committed. The cursor file stays the
// worker's own record (it drives retention and serves the other brokers),
// but for this broker the destination's word wins: the cursor is persisted
// every 200ms, the position in the same transaction as the events.

// resume opens the worker's stream and moves the cursor up to the position
// the destination recorded. It retries until the destination answers and
// returns false if ctx ended first.
func (w *worker) resume(ctx context.Context) bool {
	for {
		p, err := w.position(ctx)
		if err == nil {
			w.succeeded()
			w.resumeAt(p)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if !w.pause(ctx, fmt.Errorf("read the destination's position: %w", err)) {
			return false
		}
	}
}

func (w *worker) resumeAt(p uint64) {
	c := w.cursor.Load()
	switch {
	case p > w.logEnd:
		w.stale = p
		w.log.Error("spool: the destination recorded a position past the end of the log (the log lost its unsynced tail under fsync interval or never, or the spool directory was restored from a copy); delivering from the cursor",
			"cursor", c, "position", p, "log_end", w.logEnd)
	case p > c:
		w.log.Info("spool: resuming at the position the destination recorded; the events before it are there already",
			"cursor", c, "position", p, "skipped", p-c)
		w.r.close()
		w.r = newReader(w.s, p, w.onLoss)
		w.advance(p)
	}
}

// position reads the destination's position, opening the stream first if
// needed.
func (w *worker) position(ctx context.Context) (uint64, error) {
	if w.stream == nil {
		st, err := w.positioned.OpenStream(ctx, w.s.streamID(w.name))
		if err != nil {
			return 0, err
		}
		w.stream = st
	}
	if t := w.s.cfg.PublishTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	p, err := w.stream.Position(ctx)
	if err != nil {
		return 0, err
	}
	w.dest, w.destKnown = p, true
	return p, nil
}

// publishAt writes the events of recs the destination does not hold yet,
// with the position they reach. After a failure the position is read
// again first: what an unknown outcome committed is not written twice.
func (w *worker) publishAt(ctx context.Context, evs []event.Event, recs []record) error {
	if !w.destKnown {
		p, err := w.position(ctx)
		if err != nil {
			return err
		}
		if p != w.stale {
			i := 0
			for i < len(recs) && recs[i].seq < p {
				i++
			}
			if i > 0 {
				w.log.Info("spool: the destination already holds events a failed write sent (its commit went through); not writing them again",
					"events", i, "position", p)
			}
			evs, recs = evs[i:], recs[i:]
			if len(recs) == 0 {
				return nil
			}
		}
	}
	n := next(recs)
	if err := w.stream.PublishAt(ctx, w.dest, n, evs...); err != nil {
		w.destKnown = false
		return err
	}
	w.dest, w.stale = n, 0
	return nil
}

// maxBatch is the spool's max_batch, or more for a stream that asks for
// bigger batches (broker.BatchHinter).
func (w *worker) maxBatch() int {
	n := w.s.cfg.MaxBatch
	if h, ok := w.stream.(broker.BatchHinter); ok {
		n = max(n, h.MinBatch())
	}
	return n
}

func (w *worker) closeStream() {
	if w.stream == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.stream.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		w.log.Warn("spool: closing the broker stream", "err", err)
	}
}
