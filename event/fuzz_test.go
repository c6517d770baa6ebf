package event

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

// FuzzParse checks that whatever the parser accepts encodes to valid JSON
// in both formats and parses back to the same value.
func FuzzParse(f *testing.F) {
	for _, l := range fixtures.Events() {
		f.Add(l)
	}
	f.Add([]byte(`{"a":"\ud800\udc00\ud800","b":-0,"c":1E+2,"d":[{}]}`))
	f.Add([]byte(`{"sender_id":"x","event":"bot","timestamp":1e-7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Parse(data)
		if err != nil {
			return
		}
		_ = ev.Validate()
		for _, format := range []Format{FormatRasa, FormatCompact, FormatUJSON} {
			out := ev.AppendJSON(nil, format)
			if !json.Valid(out) {
				t.Fatalf("%s output is not JSON: %q", format, out)
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%q", format, err, out)
			}
			if back.SenderID != ev.SenderID || !Equal(back.Body(), ev.Body()) {
				t.Fatalf("%s round trip changed the event:\n in %q\nout %q", format, data, out)
			}
		}
	})
}

// FuzzCanonical checks that Rasa's re-serialization never panics, yields
// an object with "event" and "timestamp" first, and is idempotent (Rasa
// loads its own as_dict back unchanged).
func FuzzCanonical(f *testing.F) {
	for _, l := range fixtures.Events() {
		f.Add(l)
	}
	f.Add([]byte(`{"event":"reminder","date_time":"2030-01-02 03:04:05.1234567-0130","name":null}`))
	f.Add([]byte(`{"event":"form_validation","validate":[],"metadata":{"a":1}}`))
	f.Add([]byte(`{"event":"user","parse_data":{"metadata":null,"intent":0}}`))
	now := func() float64 { return 1700000000.5 }
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Parse(data)
		if err != nil {
			return
		}
		c, err := Canonical(ev, now)
		if err != nil {
			return
		}
		ms := c.Body().Members()
		if len(ms) < 2 || ms[0].Key != "event" || ms[1].Key != "timestamp" {
			t.Fatalf("canonical form starts %v", ms)
		}
		again, err := Canonical(c, now)
		if err != nil || !Equal(again.Body(), c.Body()) {
			t.Fatalf("not idempotent (%v):\n once %s\ntwice %s", err, c.Body().AppendJSON(nil, FormatRasa), again.Body().AppendJSON(nil, FormatRasa))
		}
	})
}
