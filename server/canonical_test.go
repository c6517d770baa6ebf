package server

import (
	"strings"
	"testing"
)

// TestIngestTimestampAndCanonical: POST /events publishes an event without
// a timestamp as given; with CanonicalEvents, as Rasa's classes write it.
func TestIngestTimestampAndCanonical(t *testing.T) {
	body := []byte(`[{"sender_id": "a", "event": "form", "name": "f", "junk": 1}, {"sender_id": "a", "event": "stack", "update": "[]"}]`)
	s, rec := newTestServer(t, Options{})
	if resp, m := do(t, s, "POST", "/events", body); resp.StatusCode != 202 {
		t.Fatalf("as given: %d %v", resp.StatusCode, m)
	}
	if got := string(rec.Events()[0].RasaJSON()); got != `{"sender_id": "a", "event": "form", "name": "f", "junk": 1}` {
		t.Errorf("as given: %s", got)
	}
	s, rec = newTestServer(t, Options{CanonicalEvents: true})
	if resp, m := do(t, s, "POST", "/events", body); resp.StatusCode != 202 {
		t.Fatalf("canonical: %d %v", resp.StatusCode, m)
	}
	got := string(rec.Events()[0].RasaJSON())
	if !strings.HasPrefix(got, `{"sender_id": "a", "event": "active_loop", "timestamp": 1`) || !strings.HasSuffix(got, `, "name": "f"}`) {
		t.Errorf("canonical: %s", got)
	}
	if got := string(rec.Events()[1].RasaJSON()); got != `{"sender_id": "a", "event": "stack", "update": "[]"}` {
		t.Errorf("an unknown type is passed through: %s", got)
	}
	resp, m := do(t, s, "POST", "/events", []byte(`{"sender_id": "a", "event": "action"}`))
	if resp.StatusCode != 400 || !strings.Contains(m["message"].(string), "name or an action_text") {
		t.Errorf("an event Rasa cannot load: %d %v", resp.StatusCode, m)
	}
}
