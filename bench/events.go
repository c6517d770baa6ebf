package bench

import (
	"fmt"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// Events returns n realistic events: the shared Rasa fixtures cycled, each
// given one of senders conversation ids and a distinct timestamp, so that
// every benchmark publishes the same bytes through every client.
func Events(n, senders int) ([]event.Event, error) {
	if senders < 1 {
		senders = 1
	}
	var base []event.Event
	for _, l := range fixtures.Events() {
		ev, err := event.Parse(l)
		if err != nil {
			return nil, err
		}
		base = append(base, ev)
	}
	out := make([]event.Event, n)
	for i := range out {
		ev := base[i%len(base)].With("timestamp", event.FloatValue(1700000000+float64(i)/1000))
		ev.SenderID = fmt.Sprintf("bench-%04d", i%senders)
		ev.ID = event.NewID()
		// Encode once now so that every client is timed on the same bytes
		// and none pays for encoding inside the measurement.
		out[i], _ = event.FromRasa(ev.ID, ev.RasaJSON())
	}
	return out, nil
}

// Payloads returns the Rasa bytes of evs, for raw clients.
func Payloads(evs []event.Event) [][]byte {
	out := make([][]byte, len(evs))
	for i, ev := range evs {
		out[i] = ev.RasaJSON()
	}
	return out
}
