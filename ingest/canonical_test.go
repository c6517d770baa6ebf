package ingest

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/parleyhq/parley/event"
)

func TestReaderCanonical(t *testing.T) {
	in := `{"sender_id": "a", "event": "form", "timestamp": 1, "name": "f", "junk": 1}
{"sender_id": "a", "event": "stack", "timestamp": 2, "update": "[]"}
{"sender_id": "a", "event": "action", "timestamp": 3}
`
	r := NewReader(strings.NewReader(in))
	r.Canonical = true
	ev, err := r.Next()
	if err != nil || string(ev.RasaJSON()) != `{"sender_id": "a", "event": "active_loop", "timestamp": 1, "name": "f"}` || ev.ID == "" {
		t.Fatalf("legacy form: %s %v", ev.RasaJSON(), err)
	}
	// A type Rasa has no class for goes through as given.
	if ev, err = r.Next(); err != nil || string(ev.RasaJSON()) != `{"sender_id": "a", "event": "stack", "timestamp": 2, "update": "[]"}` {
		t.Fatalf("unknown type: %s %v", ev.RasaJSON(), err)
	}
	// An action without name or action_text: Rasa's class refuses it.
	var le *LineError
	if _, err = r.Next(); !errors.As(err, &le) || le.Line != 3 || !errors.Is(err, event.ErrNotRepresentable) {
		t.Fatalf("line 3: %v", err)
	}
	if _, err = r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestCanonicalAllFillsTimestamp(t *testing.T) {
	evs, err := DecodeBody([]byte(`[{"sender_id": "a", "event": "pause"}]`), "")
	if err != nil {
		t.Fatal(err)
	}
	if string(evs[0].RasaJSON()) != `{"sender_id": "a", "event": "pause"}` {
		t.Fatalf("as given: %s", evs[0].RasaJSON())
	}
	evs, err = CanonicalAll(evs)
	if ts, ok := evs[0].Timestamp(); err != nil || !ok || ts < 1.7e9 {
		t.Fatalf("canonical: %s %v", evs[0].RasaJSON(), err)
	}
}
