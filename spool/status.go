package spool

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Status is a snapshot of the spool, for /ready, status pages and tests.
type Status struct {
	Dir string
	// Bytes is the size of the segments on disk; MaxSize the limit.
	Bytes, MaxSize int64
	// Full reports that the spool refused an append with ErrFull and has
	// not freed space or accepted an append since.
	Full     bool
	Segments int
	// FirstSeq is the first seq still on disk; NextSeq the one the next
	// event gets. NextSeq-FirstSeq bounds the events held.
	FirstSeq, NextSeq uint64
	// Err is set when the spool stopped accepting events after a disk
	// failure it could not undo; a restart recovers.
	Err     error
	Brokers []BrokerStatus
}

// BrokerStatus is one broker's delivery state.
type BrokerStatus struct {
	Name string
	// Cursor is the seq of the next event to deliver; Persisted the cursor
	// on disk, where a restart resumes (events between them are delivered
	// again: at-least-once).
	Cursor, Persisted uint64
	// Pending is the number of events not yet delivered.
	Pending uint64
	// OldestPending is when the oldest undelivered event was accepted
	// (zero when caught up).
	OldestPending time.Time
	// Failing reports that the last attempt failed; FailingSince is when
	// the current run of failures started, Attempts its length.
	Failing      bool
	FailingSince time.Time
	Attempts     int
	// LastError and LastErrorAt describe the latest failure, kept after
	// recovery.
	LastError   string
	LastErrorAt time.Time
	// DeadLetterFile is where rejected events of this broker go.
	DeadLetterFile string
}

// Status returns the spool's state.
func (s *Spool) Status() Status {
	now := time.Now()
	end := s.committed.Load()
	s.mu.Lock()
	st := Status{Dir: s.dir, Segments: len(s.segs), FirstSeq: s.segs[0].base, NextSeq: end, Err: s.broken}
	s.mu.Unlock()
	st.Bytes, st.MaxSize = s.disk.Load(), s.cfg.MaxSize
	s.capMu.Lock()
	st.Full = s.full
	s.capMu.Unlock()
	// Not ckptMu: a checkpoint holds it through its fsyncs, and a slow
	// disk must not make /ready hang.
	persisted := *s.persistedView.Load()
	for i, w := range s.workers {
		bs := w.status(end, now)
		bs.Persisted = persisted[i]
		st.Brokers = append(st.Brokers, bs)
	}
	return st
}

func (w *worker) status(end uint64, now time.Time) BrokerStatus {
	c := w.cursor.Load()
	bs := BrokerStatus{Name: w.name, Cursor: c, DeadLetterFile: w.dl.path}
	if c < end {
		bs.Pending = end - c
		if at := w.oldest.Load(); at != 0 {
			bs.OldestPending = time.Unix(0, at)
		}
	}
	w.mu.Lock()
	h := w.state
	w.mu.Unlock()
	bs.Failing, bs.FailingSince, bs.Attempts = h.failing, h.failingSince, h.attempts
	if h.lastErr != nil {
		bs.LastError, bs.LastErrorAt = h.lastErr.Error(), h.lastErrAt
	}
	return bs
}

// ErrNotReady is wrapped by Ready's errors.
var ErrNotReady = errors.New("spool not ready")

// Ready returns nil while parley can take and deliver events, for the
// /ready endpoint: it fails while a broker has been failing for longer
// than ready_failure_threshold, while the spool is full, or after a disk
// failure stopped appends. The error names each cause.
func (s *Spool) Ready() error {
	st := s.Status()
	var errs []error
	if st.Err != nil {
		errs = append(errs, st.Err)
	}
	if st.Full {
		errs = append(errs, fmt.Errorf("spool is full (%d of %d bytes)", st.Bytes, st.MaxSize))
	}
	now := time.Now()
	for _, b := range st.Brokers {
		if b.Failing && now.Sub(b.FailingSince) >= s.cfg.ReadyFailureThreshold {
			errs = append(errs, fmt.Errorf("broker %s failing for %s (%d attempts): %s",
				b.Name, now.Sub(b.FailingSince).Round(time.Second), b.Attempts, b.LastError))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrNotReady, errors.Join(errs...))
}

// Ping is Ready, so that code holding the spool as a broker.Broker can
// check it the way it checks brokers (broker.Pinger).
func (s *Spool) Ping(context.Context) error { return s.Ready() }
