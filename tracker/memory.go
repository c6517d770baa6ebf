package tracker

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
)

// MemoryStore keeps conversations in memory: Rasa's InMemoryTrackerStore,
// chosen when endpoints.yml has no tracker_store (or type memory). It is
// lost on restart, so it suits tests and demos. Unlike Rasa's it keeps
// every session, not only the last one saved.
type MemoryStore struct {
	locks keyedMutex

	mu    sync.RWMutex
	convs map[string][]memEvent
	// records are the Idempotency-Key outcomes, by conversation then key.
	records   map[string]map[string]idempotency.Outcome
	lastPrune time.Time
	seq       uint64 // insertion counter, the tie-break of Scan's order
	closed    bool
}

type memEvent struct {
	ev  event.Event
	seq uint64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{convs: map[string][]memEvent{}}
}

// Retrieve returns a copy of the conversation's events.
func (s *MemoryStore) Retrieve(ctx context.Context, id string) ([]event.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.eventsLocked(id), nil
}

func (s *MemoryStore) eventsLocked(id string) []event.Event {
	stored := s.convs[id]
	if len(stored) == 0 {
		return nil
	}
	out := make([]event.Event, len(stored))
	for i, m := range stored {
		out[i] = m.ev
	}
	return out
}

// Update runs fn under the conversation's lock and stores its change.
func (s *MemoryStore) Update(ctx context.Context, id string, fn UpdateFunc) error {
	return s.UpdateKeyed(ctx, id, "", unkeyed(fn))
}

// UpdateKeyed is Update with the outcome recorded for key.
func (s *MemoryStore) UpdateKeyed(ctx context.Context, id, key string, fn KeyedUpdateFunc) error {
	if id == "" {
		return fmt.Errorf("memory tracker store: %w: empty", ErrInvalidID)
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	current, err := s.Retrieve(ctx, id)
	if err != nil {
		return err
	}
	var rec *idempotency.Outcome
	if key != "" {
		o, ok, err := s.Recorded(ctx, id, key)
		if err != nil {
			return err
		}
		if ok {
			rec = &o
		}
	}
	ch, err := fn(current, rec)
	if err != nil {
		return err
	}
	if ch.empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if ch.Record != nil {
		s.recordLocked(id, *ch.Record)
	}
	if !ch.Replace && len(ch.Events) == 0 {
		return nil
	}
	var evs []memEvent
	if !ch.Replace {
		// A new slice: readers may hold the old one.
		evs = slices.Clip(s.convs[id])
	}
	for _, ev := range ch.Events {
		ev.SenderID, ev.ID, ev.Headers = id, "", nil
		s.seq++
		evs = append(evs, memEvent{ev: ev, seq: s.seq})
	}
	if len(evs) == 0 {
		delete(s.convs, id)
	} else {
		s.convs[id] = evs
	}
	return nil
}

// Recorded returns the outcome recorded for key on conversation id.
func (s *MemoryStore) Recorded(ctx context.Context, id, key string) (idempotency.Outcome, bool, error) {
	if err := ctx.Err(); err != nil {
		return idempotency.Outcome{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idempotency.Outcome{}, false, ErrClosed
	}
	o, ok := s.records[id][key]
	if ok && o.Expired(time.Now(), RecordWindow) {
		return idempotency.Outcome{}, false, nil
	}
	return o, ok, nil
}

// recordLocked stores r, dropping (at most once a minute) the records
// older than RecordWindow.
func (s *MemoryStore) recordLocked(id string, r Record) {
	if s.records == nil {
		s.records = map[string]map[string]idempotency.Outcome{}
	}
	if now := time.Now(); now.Sub(s.lastPrune) >= time.Minute {
		s.lastPrune = now
		for conv, byKey := range s.records {
			for k, o := range byKey {
				if o.Expired(now, RecordWindow) {
					delete(byKey, k)
				}
			}
			if len(byKey) == 0 {
				delete(s.records, conv)
			}
		}
	}
	if s.records[id] == nil {
		s.records[id] = map[string]idempotency.Outcome{}
	}
	s.records[id][r.Key] = r.Outcome
}

// Keys returns the conversation ids, sorted.
func (s *MemoryStore) Keys(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	keys := make([]string, 0, len(s.convs))
	for k := range s.convs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// selectLocked returns the events matching q in Scan's order.
func (s *MemoryStore) selectLocked(q Query) []memEvent {
	senders := q.senderSet()
	var out []memEvent
	for id, evs := range s.convs {
		for _, m := range evs {
			if q.match(id, eventTimestamp(m.ev), senders) {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b memEvent) int {
		if c := cmp.Compare(eventTimestamp(a.ev), eventTimestamp(b.ev)); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	return out
}

// Count returns the number of events matching q.
func (s *MemoryStore) Count(ctx context.Context, q Query) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return int64(len(s.selectLocked(q))), nil
}

// Scan calls fn with the events matching q in timestamp order. It works
// on a snapshot, so fn may take its time.
func (s *MemoryStore) Scan(ctx context.Context, q Query, fn func(event.Event) error) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	sel := s.selectLocked(q)
	s.mu.RUnlock()
	for _, m := range sel {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(m.ev); err != nil {
			return err
		}
	}
	return nil
}

// Close drops the conversations.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.convs = nil
	return nil
}
