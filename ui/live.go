package ui

import (
	"context"
	"sync"
	"time"

	"github.com/parleyhq/parley/event"
)

// Publisher is what the HTTP ingest and the conversation API publish to
// (the spool).
type Publisher interface {
	Publish(ctx context.Context, evs ...event.Event) error
}

// Live keeps the last events accepted on this node, for the live tail and
// to wake open transcripts, and tells watchers when more arrive.
type Live struct {
	size int

	mu    sync.Mutex
	ring  []LiveEvent // oldest first, at most size
	next  uint64      // Seq of the next event
	watch map[chan struct{}]struct{}
}

// LiveEvent is one accepted event.
type LiveEvent struct {
	Seq    uint64
	At     time.Time
	Source string // "events" (POST /events) or "conversations" (the conversation API)
	Sender string
	Type   string
	// JSON is the event's Rasa bytes, or nil when it was larger than
	// maxLiveEventBytes (only its type and sender are kept then).
	JSON []byte
	Size int
}

// DefaultLiveSize is how many events Live keeps by default.
const DefaultLiveSize = 500

// maxLiveEventBytes bounds what one kept event holds, so the tail stays
// within size times this much memory.
const maxLiveEventBytes = 64 << 10

// NewLive keeps the last size events (DefaultLiveSize when size <= 0).
func NewLive(size int) *Live {
	if size <= 0 {
		size = DefaultLiveSize
	}
	return &Live{size: size, next: 1, watch: map[chan struct{}]struct{}{}}
}

// Tap returns a Publisher that publishes to p and, once p accepted the
// events, records them as coming from source.
func (l *Live) Tap(p Publisher, source string) Publisher {
	return tap{l: l, p: p, source: source}
}

type tap struct {
	l      *Live
	p      Publisher
	source string
}

func (t tap) Publish(ctx context.Context, evs ...event.Event) error {
	if err := t.p.Publish(ctx, evs...); err != nil {
		return err
	}
	t.l.add(t.source, evs)
	return nil
}

func (l *Live) add(source string, evs []event.Event) {
	now := time.Now()
	kept := make([]LiveEvent, len(evs))
	for i, ev := range evs {
		js := ev.RasaJSON()
		le := LiveEvent{At: now, Source: source, Sender: ev.SenderID, Type: ev.Type(), Size: len(js)}
		if len(js) <= maxLiveEventBytes {
			le.JSON = js
		}
		kept[i] = le
	}
	l.mu.Lock()
	for i := range kept {
		kept[i].Seq = l.next
		l.next++
	}
	l.ring = append(l.ring, kept...)
	if over := len(l.ring) - l.size; over > 0 {
		l.ring = append(l.ring[:0:0], l.ring[over:]...)
	}
	for ch := range l.watch {
		select {
		case ch <- struct{}{}:
		default: // already signalled
		}
	}
	l.mu.Unlock()
}

// Since returns the kept events with Seq > after, oldest first.
func (l *Live) Since(after uint64) []LiveEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, le := range l.ring {
		if le.Seq > after {
			return append([]LiveEvent(nil), l.ring[i:]...)
		}
	}
	return nil
}

// Last returns the Seq of the newest event (0 before any).
func (l *Live) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1
}

// Watch returns a channel signalled (coalesced) after events are added,
// and a function that stops the signals.
func (l *Live) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.watch[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.watch, ch)
		l.mu.Unlock()
	}
}
