package ingest

import (
	"errors"
	"time"

	"github.com/parleyhq/parley/event"
)

// Canonical returns ev as Rasa's event class re-serializes it
// (event.Canonical: Rasa's keys and defaults, unknown keys dropped, a
// missing timestamp set to now), for `parley publish --canonical` and
// `parley serve --canonical-events`. Types Rasa has no class for are kept
// as given, as Rasa's brokers pass them on; an event Rasa's class cannot
// be built from is an error.
func Canonical(ev event.Event) (event.Event, error) {
	c, err := event.Canonical(ev, nowSeconds)
	if errors.Is(err, event.ErrUnknownType) {
		return ev, nil
	}
	return c, err
}

// CanonicalAll applies Canonical to every event of a body; an error names
// the event's position.
func CanonicalAll(evs []event.Event) ([]event.Event, error) {
	for i, ev := range evs {
		c, err := Canonical(ev)
		if err != nil {
			return nil, &IndexError{Index: i, Err: err}
		}
		evs[i] = c
	}
	return evs, nil
}

func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }
