package brokertest

import (
	"context"
	"sync"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// Recorder is an in-memory Broker for tests of code that publishes: it
// keeps what was published and can be told to fail.
type Recorder struct {
	mu     sync.Mutex
	events []event.Event
	closed bool
	// FailNext, when > 0, makes that many next Publish calls fail with
	// Err (or an error if Err is nil), publishing nothing.
	FailNext int
	Err      error
	calls    int
	changed  chan struct{}
}

var _ broker.Broker = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

// Publish records evs.
func (r *Recorder) Publish(ctx context.Context, evs ...event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.closed {
		return broker.ErrClosed
	}
	if r.FailNext > 0 {
		r.FailNext--
		if r.Err != nil {
			return r.Err
		}
		return errInjected
	}
	r.events = append(r.events, evs...)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

type injectedError struct{}

func (injectedError) Error() string { return "brokertest: injected failure" }

var errInjected error = injectedError{}

// Close marks the recorder closed.
func (r *Recorder) Close(context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// Events returns a copy of what was published.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Calls returns how many times Publish was called.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Wait blocks until at least n events are recorded or ctx ends, and
// returns them.
func (r *Recorder) Wait(ctx context.Context, n int) []event.Event {
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			out := append([]event.Event(nil), r.events...)
			r.mu.Unlock()
			return out
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return r.Events()
		}
	}
}

// Destination wraps the recorder for Run.
func (r *Recorder) Destination() Destination {
	return Destination{Broker: r, Read: func(ctx context.Context, n int) ([]Message, error) {
		var out []Message
		for _, ev := range r.Wait(ctx, n) {
			out = append(out, Message{Body: ev.RasaJSON(), Key: []byte(ev.SenderID), ID: ev.ID})
		}
		return out, nil
	}}
}
