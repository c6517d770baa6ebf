package tracker

import (
	"context"

	"github.com/parleyhq/parley/event"
)

// Publisher takes the events a conversation API write adds: the spool in
// `parley serve` (durable once Publish returns), any broker.Broker, or
// brokertest.Recorder in tests.
type Publisher interface {
	Publish(ctx context.Context, evs ...event.Event) error
}

// bodyKey is what makes two events of one conversation the same event:
// their Rasa bytes (the body, since the sender is the same).
func bodyKey(ev event.Event, scratch []byte) ([]byte, string) {
	scratch = ev.Body().AppendJSON(scratch[:0], event.FormatRasa)
	return scratch, string(scratch)
}

// newEvents returns the events of incoming that are not in stored,
// counting duplicates (a multiset difference by Rasa bytes): an event
// stored once absorbs one identical incoming event. This is what makes a
// POST retried after a timeout, or a client that posts its whole tracker
// again with one more event, add and publish only what is new, instead of
// Rasa's positional diff that republishes or skips events.
func newEvents(stored, incoming []event.Event) []event.Event {
	if len(stored) == 0 {
		return incoming
	}
	counts := make(map[string]int, len(stored))
	var scratch []byte
	var key string
	for _, ev := range stored {
		scratch, key = bodyKey(ev, scratch)
		counts[key]++
	}
	var out []event.Event
	for _, ev := range incoming {
		scratch, key = bodyKey(ev, scratch)
		if counts[key] > 0 {
			counts[key]--
			continue
		}
		out = append(out, ev)
	}
	return out
}

// forPublishing gives each event its conversation and a fresh ID, as
// every published event carries.
func forPublishing(id string, evs []event.Event) []event.Event {
	out := make([]event.Event, len(evs))
	for i, ev := range evs {
		ev.SenderID = id
		ev.ID = event.NewID()
		out[i] = ev
	}
	return out
}
