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
	ring  []LiveEvent // a circular buffer of size; event Seq s sits at (s-1) % size
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
	// Event is the event, unless it was larger than maxLiveEventBytes
	// (Large; only its type and sender are kept then). Its JSON is made
	// when a page shows it, not on the ingest path.
	Event event.Event
	Large bool
}

// JSON returns the event's Rasa bytes (nil for a Large event).
func (le LiveEvent) JSON() []byte {
	if le.Large {
		return nil
	}
	return le.Event.RasaJSON()
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
	return &Live{size: size, ring: make([]LiveEvent, size), next: 1, watch: map[chan struct{}]struct{}{}}
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
		le := LiveEvent{At: now, Source: source, Sender: ev.SenderID, Type: ev.Type(), Event: ev}
		if sizeOver(ev.Body(), maxLiveEventBytes) < 0 {
			le.Event, le.Large = event.Event{}, true
		}
		kept[i] = le
	}
	if len(kept) > l.size {
		kept = kept[len(kept)-l.size:]
	}
	l.mu.Lock()
	l.next += uint64(len(evs) - len(kept)) // those would be overwritten at once
	for _, le := range kept {
		le.Seq = l.next
		l.ring[(le.Seq-1)%uint64(l.size)] = le
		l.next++
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
	first := uint64(1)
	if l.next > uint64(l.size) {
		first = l.next - uint64(l.size)
	}
	first = max(first, after+1)
	if first >= l.next {
		return nil
	}
	out := make([]LiveEvent, 0, l.next-first)
	for s := first; s < l.next; s++ {
		out = append(out, l.ring[(s-1)%uint64(l.size)])
	}
	return out
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

// sizeOver returns budget minus roughly the bytes of v's JSON, or a
// negative number as soon as v is larger than budget: a walk that stops
// early, much cheaper than encoding.
func sizeOver(v event.Value, budget int) int {
	switch v.Kind() {
	case event.String:
		return budget - len(v.Str()) - 2
	case event.Number:
		return budget - len(v.NumberText())
	case event.Array:
		for _, e := range v.Elems() {
			if budget = sizeOver(e, budget-1); budget < 0 {
				return budget
			}
		}
		return budget - 2
	case event.Object:
		for _, m := range v.Members() {
			if budget = sizeOver(m.Value, budget-len(m.Key)-4); budget < 0 {
				return budget
			}
		}
		return budget - 2
	}
	return budget - 5
}

// Record adds evs, accepted from source by a path that does not go through
// a Tap (POST /events with an Idempotency-Key), to the live tail.
func (l *Live) Record(source string, evs ...event.Event) { l.add(source, evs) }
