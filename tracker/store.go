package tracker

import (
	"context"
	"errors"
	"math"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
)

// Store keeps the events of conversations. Implementations (MemoryStore,
// SQLStore) pass the conformance suite in tracker/trackertest.
//
// Events come back as they were stored: the same JSON body in the same key
// order, with SenderID set to the conversation id and no ID.
type Store interface {
	// Retrieve returns every event of a conversation, all sessions, in the
	// order they were stored, or nil (and no error) when there are none.
	Retrieve(ctx context.Context, id string) ([]event.Event, error)
	// Update reads a conversation's events, calls fn with them and applies
	// the Change fn returns, as one step: updates of a conversation run one
	// at a time (fn included), updates of different conversations run in
	// parallel. If fn fails, nothing is written and Update returns fn's
	// error unchanged.
	Update(ctx context.Context, id string, fn UpdateFunc) error
	// UpdateKeyed is Update for a request that carries an Idempotency-Key:
	// fn also gets the outcome recorded for key on the conversation
	// (Change.Record of an earlier update; nil when there is none or it
	// expired), read in the same step, so that the lookup and the change it
	// decides are one.
	UpdateKeyed(ctx context.Context, id, key string, fn KeyedUpdateFunc) error
	// Recorded returns the outcome recorded for key on conversation id, if
	// there is one that has not expired.
	Recorded(ctx context.Context, id, key string) (idempotency.Outcome, bool, error)
	// Keys returns the ids of the conversations that have events, sorted.
	Keys(ctx context.Context) ([]string, error)
	// Count returns the number of events Scan would visit for q.
	Count(ctx context.Context, q Query) (int64, error)
	// Scan calls fn with every event matching q, across conversations, in
	// timestamp order; events with equal timestamps come in the order they
	// were stored. It stops at fn's first error and returns it. fn must not
	// call the store: Scan may hold its only connection.
	Scan(ctx context.Context, q Query, fn func(event.Event) error) error
	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}

// UpdateFunc decides what to write given a conversation's current events
// (nil for a new conversation). It must not modify the slice.
type UpdateFunc func(current []event.Event) (Change, error)

// KeyedUpdateFunc is an UpdateFunc that also gets the outcome recorded
// for the request's Idempotency-Key, or nil.
type KeyedUpdateFunc func(current []event.Event, recorded *idempotency.Outcome) (Change, error)

// unkeyed adapts an UpdateFunc.
func unkeyed(fn UpdateFunc) KeyedUpdateFunc {
	return func(current []event.Event, _ *idempotency.Outcome) (Change, error) { return fn(current) }
}

// Change is what an UpdateFunc writes. The zero Change writes nothing.
type Change struct {
	// Replace makes Events the conversation's whole event list (an empty
	// list deletes the conversation); otherwise Events are appended.
	Replace bool
	// Events are written in order. Their SenderID and ID are ignored.
	Events []event.Event
	// Record, if set, is stored in the same transaction as Events (even
	// when there are none): the answer to the request that carried an
	// Idempotency-Key, for its retries. Records older than RecordWindow
	// are dropped as new ones are written.
	Record *Record
}

// Record is the outcome of a write made under an Idempotency-Key. A key
// belongs to one conversation: the same key on another conversation is
// another request.
type Record struct {
	Key     string
	Outcome idempotency.Outcome
}

// RecordWindow is how long stores keep a Record
// (idempotency.DefaultWindow).
const RecordWindow = idempotency.DefaultWindow

// empty reports whether c writes nothing.
func (c Change) empty() bool { return !c.Replace && len(c.Events) == 0 && c.Record == nil }

// Query selects events for Scan and Count. The zero Query selects all.
type Query struct {
	// SenderIDs limits the events to these conversations (nil: all).
	SenderIDs []string
	// MinTimestamp, if set, drops events with a smaller timestamp
	// (inclusive bound, as `rasa export --minimum-timestamp`).
	MinTimestamp *float64
	// MaxTimestamp, if set, drops events with this timestamp or a larger
	// one (exclusive bound, as `rasa export --maximum-timestamp`).
	MaxTimestamp *float64
}

// match reports whether an event of conversation id at ts is selected.
// An event without a timestamp (ts -Inf) fails any bound, as NULL does in
// SQL.
func (q Query) match(id string, ts float64, senders map[string]bool) bool {
	if math.IsInf(ts, -1) && (q.MinTimestamp != nil || q.MaxTimestamp != nil) {
		return false
	}
	if q.MinTimestamp != nil && !(ts >= *q.MinTimestamp) {
		return false
	}
	if q.MaxTimestamp != nil && !(ts < *q.MaxTimestamp) {
		return false
	}
	return senders == nil || senders[id]
}

func (q Query) senderSet() map[string]bool {
	if q.SenderIDs == nil {
		return nil
	}
	m := make(map[string]bool, len(q.SenderIDs))
	for _, id := range q.SenderIDs {
		m[id] = true
	}
	return m
}

// Sentinel errors callers branch on.
var (
	// ErrClosed is returned by a store after Close.
	ErrClosed = errors.New("tracker store is closed")
	// ErrInvalidID is returned for a conversation id the store cannot keep
	// (empty, or longer than Rasa's VARCHAR(255) column on PostgreSQL).
	ErrInvalidID = errors.New("invalid conversation id")
)

// Append appends evs to a conversation.
func Append(ctx context.Context, s Store, id string, evs ...event.Event) error {
	return s.Update(ctx, id, func([]event.Event) (Change, error) {
		return Change{Events: evs}, nil
	})
}

// Replace makes evs a conversation's whole event list.
func Replace(ctx context.Context, s Store, id string, evs []event.Event) error {
	return s.Update(ctx, id, func([]event.Event) (Change, error) {
		return Change{Replace: true, Events: evs}, nil
	})
}

// eventTimestamp returns an event's timestamp for ordering; events without
// a numeric one sort first, as NULL does in SQLite.
func eventTimestamp(ev event.Event) float64 {
	ts, ok := ev.Timestamp()
	if !ok {
		return math.Inf(-1)
	}
	return ts
}

// Ping checks that s can be used: the database answers for SQLStore, and
// always for MemoryStore. For server readiness checks.
func Ping(ctx context.Context, s Store) error {
	if p, ok := s.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}
