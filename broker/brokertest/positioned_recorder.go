package brokertest

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// PositionedRecorder is a Recorder that is also a broker.Positioned
// broker, for tests of exactly-once writers: it keeps each stream's
// position with the events, fences replaced stream handles, and can be
// told to commit a write and report it failed (an unknown outcome).
type PositionedRecorder struct {
	*Recorder
	positions map[string]uint64
	epochs    map[string]int
	// CommitThenFail, when > 0, makes that many next PublishAt calls
	// commit and then return an error, as a connection cut during the
	// commit does.
	CommitThenFail int
}

var _ broker.Positioned = (*PositionedRecorder)(nil)

// NewPositionedRecorder returns an empty PositionedRecorder.
func NewPositionedRecorder() *PositionedRecorder {
	return &PositionedRecorder{Recorder: NewRecorder(), positions: map[string]uint64{}, epochs: map[string]int{}}
}

// OpenStream opens the stream id, fencing earlier handles of it.
func (r *PositionedRecorder) OpenStream(_ context.Context, id string) (broker.Stream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epochs[id]++
	return &recorderStream{r: r, id: id, epoch: r.epochs[id]}, nil
}

// Position returns the position recorded for stream id.
func (r *PositionedRecorder) Position(id string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.positions[id]
}

// SetPosition records p for stream id, as an earlier writer would have.
func (r *PositionedRecorder) SetPosition(id string, p uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.positions[id] = p
}

type recorderStream struct {
	r     *PositionedRecorder
	id    string
	epoch int
}

var errFenced = errors.New("brokertest: stream handle fenced by a newer one")

func (s *recorderStream) Position(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.FailNext > 0 {
		s.r.FailNext--
		return 0, errInjected
	}
	return s.r.positions[s.id], nil
}

func (s *recorderStream) PublishAt(ctx context.Context, prev, next uint64, evs ...event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	switch {
	case r.closed:
		return broker.ErrClosed
	case r.epochs[s.id] != s.epoch:
		return errFenced
	case r.positions[s.id] != prev:
		return broker.ErrPositionMoved
	case r.FailNext > 0:
		r.FailNext--
		if r.Err != nil {
			return r.Err
		}
		return errInjected
	}
	r.events = append(r.events, evs...)
	r.positions[s.id] = next
	close(r.changed)
	r.changed = make(chan struct{})
	if r.CommitThenFail > 0 {
		r.CommitThenFail--
		return errInjected
	}
	return nil
}

func (s *recorderStream) Close(context.Context) error { return nil }

// Destination wraps the recorder for Run.
func (r *PositionedRecorder) Destination() Destination {
	d := r.Recorder.Destination()
	d.Broker = r
	return d
}
