package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// worker delivers the log to one broker, in order: it reads a batch from
// its cursor, publishes it until the broker confirms (head-of-line
// retries with backoff, so a sender's events never overtake each other),
// then advances the cursor. A batch the broker rejects permanently is
// bisected down to the events at fault, which go to the dead-letter file.
//
// With a broker.Positioned broker the worker writes exactly once: each
// batch goes with the position it reaches, in one transaction, and the
// worker asks the destination for its position at start and after every
// failed write, so a crash, a cut connection or a commit with an unknown
// outcome never makes it write a batch twice (position.go).
type worker struct {
	s       *Spool
	name    string
	b       broker.Broker
	r       *reader
	log     *slog.Logger
	backoff broker.Backoff
	dl      *deadLetters

	// cursor is the seq of the next event to deliver: every lower one was
	// confirmed or dead-lettered.
	cursor atomic.Uint64
	// persisted is the cursor on disk; guarded by s.ckptMu.
	persisted uint64
	// oldest is the append time (Unix ns) of the oldest event in the batch
	// being delivered, 0 when caught up.
	oldest atomic.Int64

	mu    sync.Mutex
	state health

	// Set for a broker.Positioned broker; used by the worker's goroutine
	// only.
	positioned broker.Positioned
	stream     broker.Stream
	dest       uint64 // the destination's position, when destKnown
	destKnown  bool
	// stale is a position the destination recorded past the end of the
	// log at start (the log lost its unsynced tail, or the spool was
	// restored from a copy): it holds none of the events now in the log,
	// until the first write replaces it. 0 when none.
	stale uint64
	// logEnd is the end of the log when the spool opened.
	logEnd uint64

	delivered, redelivered, deadLettered, failures, lost prometheus.Counter
	publishDuration                                      prometheus.Observer
}

// health is a worker's failure state, for Status and Ready.
type health struct {
	failing      bool
	failingSince time.Time
	attempts     int // consecutive failed attempts
	lastErr      error
	lastErrAt    time.Time
	nextAttempt  time.Time
}

func newWorker(s *Spool, name string, b broker.Broker, cursor uint64) *worker {
	w := &worker{
		s:       s,
		name:    name,
		b:       b,
		log:     s.log.With("broker", name),
		backoff: broker.Backoff{Initial: s.cfg.RetryInitial, Max: s.cfg.RetryMax},
		dl:      newDeadLetters(s, name),
	}
	w.cursor.Store(cursor)
	w.r = newReader(s, cursor, w.onLoss)
	w.positioned, _ = b.(broker.Positioned)
	w.logEnd = s.committed.Load()
	m := s.m
	w.delivered = m.delivered.WithLabelValues(name)
	w.redelivered = m.redelivered.WithLabelValues(name)
	w.deadLettered = m.deadLetters.WithLabelValues(name)
	w.failures = m.publishFailures.WithLabelValues(name)
	w.lost = m.lost.WithLabelValues(name)
	w.publishDuration = m.publishDuration.WithLabelValues(name)
	return w
}

func (w *worker) run(ctx context.Context) {
	defer func() { w.r.close() }() // resume may replace the reader
	if w.positioned != nil {
		defer w.closeStream()
		if !w.resume(ctx) {
			return
		}
	}
	for {
		wake := w.s.waitCh()
		recs, err := w.r.read(w.maxBatch(), w.s.cfg.MaxBatchBytes)
		if err != nil {
			// The spool itself cannot be read (an I/O error): nothing to
			// deliver until it can, so this broker counts as failing.
			if !w.pause(ctx, fmt.Errorf("read spool: %w", err)) {
				return
			}
			w.r.close()
			continue
		}
		if len(recs) == 0 {
			w.oldest.Store(0)
			if next := w.r.next; next > w.cursor.Load() {
				w.advance(next) // past events lost to damage
			}
			select {
			case <-wake:
				if !w.linger(ctx) {
					return
				}
			case <-w.s.drain:
				if w.r.next >= w.s.committed.Load() {
					return
				}
			case <-ctx.Done():
				return
			}
			continue
		}
		w.oldest.Store(recs[0].appended)
		if !w.deliver(ctx, recs) {
			return
		}
		w.advance(w.r.next)
	}
}

// linger gives events arriving just after an idle worker woke up the
// chance to join its first batch. It returns false if ctx ended.
func (w *worker) linger(ctx context.Context) bool {
	d := w.s.cfg.DeliveryLinger
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.s.drain: // shutting down: deliver what there is now
	case <-ctx.Done():
		return false
	}
	return true
}

// advance moves the cursor; the checkpointer persists it.
func (w *worker) advance(c uint64) {
	w.cursor.Store(c)
	w.s.kickCheckpoint()
}

// deliver publishes recs in order. It returns false if ctx ended first.
func (w *worker) deliver(ctx context.Context, recs []record) bool {
	evs := make([]event.Event, len(recs))
	for i := range recs {
		evs[i] = recs[i].event()
	}
	return w.deliverBatch(ctx, evs, recs, false)
}

// next is the position a batch ending with recs reaches.
func next(recs []record) uint64 { return recs[len(recs)-1].seq + 1 }

// deliverBatch publishes evs (read from recs) until the broker confirms.
// On a permanent failure it bisects, so the good events still go out in
// order and only the bad ones are dead-lettered.
func (w *worker) deliverBatch(ctx context.Context, evs []event.Event, recs []record, again bool) bool {
	if len(evs) == 0 {
		return true
	}
	err := w.publish(ctx, evs, recs, again)
	if err == nil {
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	if len(evs) == 1 {
		return w.deadLetter(ctx, &recs[0], err)
	}
	w.log.Warn("spool: broker rejected a batch permanently; isolating the events at fault", "events", len(evs), "err", err)
	mid := len(evs) / 2
	return w.deliverBatch(ctx, evs[:mid], recs[:mid], true) && w.deliverBatch(ctx, evs[mid:], recs[mid:], true)
}

// publish calls the broker until it confirms evs, the failure is
// permanent, or ctx ends. again says evs may have reached the broker
// before (counted as redelivered).
func (w *worker) publish(ctx context.Context, evs []event.Event, recs []record, again bool) error {
	for attempt := 1; ; attempt++ {
		if again || attempt > 1 {
			w.redelivered.Add(float64(len(evs)))
		}
		err := w.publishOnce(ctx, evs, recs)
		if err == nil {
			w.succeeded()
			w.delivered.Add(float64(len(evs)))
			return nil
		}
		w.failures.Inc()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, broker.ErrPermanent) {
			return err
		}
		wait := w.backoff.Delay(attempt)
		// Said once per outage and per new error, not on every retry
		// (a missing topic may last hours); /ready and the status keep
		// the latest.
		level := slog.LevelDebug
		if w.failed(err, wait) {
			level = slog.LevelWarn
		}
		w.log.Log(ctx, level, "spool: publish failed; retrying until the broker takes the events", "attempt", attempt, "events", len(evs), "wait", wait.Round(time.Millisecond), "err", err)
		if !broker.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func (w *worker) publishOnce(ctx context.Context, evs []event.Event, recs []record) error {
	if t := w.s.cfg.PublishTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	start := time.Now()
	var err error
	if w.positioned != nil {
		err = w.publishAt(ctx, evs, recs)
	} else {
		err = w.b.Publish(ctx, evs...)
	}
	w.publishDuration.Observe(time.Since(start).Seconds())
	return err
}

// deadLetter sets rec aside with the error that rejected it, retrying the
// write until it succeeds: the cursor never passes an event that is
// neither delivered nor recorded.
func (w *worker) deadLetter(ctx context.Context, rec *record, cause error) bool {
	for attempt := 1; ; attempt++ {
		err := w.dl.write(rec, cause)
		if err == nil {
			w.deadLettered.Inc()
			w.log.Error("spool: event rejected permanently by the broker; written to the dead-letter file",
				"event_id", rec.id, "sender_id", rec.sender, "seq", rec.seq, "file", w.dl.path, "err", cause)
			return true
		}
		if !w.pause(ctx, fmt.Errorf("write dead letter: %w", err)) {
			return false
		}
	}
}

// pause records a failure that is not the broker's and waits the backoff.
func (w *worker) pause(ctx context.Context, err error) bool {
	w.mu.Lock()
	attempt := w.state.attempts + 1
	w.mu.Unlock()
	wait := w.backoff.Delay(attempt)
	w.failed(err, wait)
	w.log.Error("spool: delivery stalled", "wait", wait.Round(time.Millisecond), "err", err)
	return broker.Sleep(ctx, wait)
}

// failed records a failure and reports whether it is news: the first of
// an outage, or an error other than the last one.
func (w *worker) failed(err error, wait time.Duration) bool {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	news := !w.state.failing || w.state.lastErr == nil || w.state.lastErr.Error() != err.Error()
	if !w.state.failing {
		w.state.failing, w.state.failingSince = true, now
	}
	w.state.attempts++
	w.state.lastErr, w.state.lastErrAt = err, now
	w.state.nextAttempt = now.Add(wait)
	return news
}

func (w *worker) succeeded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state.failing {
		w.log.Info("spool: broker recovered", "failed_attempts", w.state.attempts, "failing_for", time.Since(w.state.failingSince).Round(time.Millisecond))
	}
	w.state.failing, w.state.attempts = false, 0
}

// nextAttempt returns when a failing worker tries again.
func (w *worker) nextAttempt() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state.nextAttempt, w.state.failing
}

// onLoss is told by the reader of events damage made unreadable.
func (w *worker) onLoss(from, to uint64, where string) {
	w.lost.Add(float64(to - from))
	w.log.Error("spool: events lost to on-disk corruption are skipped; delivery goes on with the next intact event",
		"first_seq", from, "events", to-from, "where", where)
}
