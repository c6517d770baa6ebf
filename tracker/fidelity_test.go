package tracker_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/tracker"
)

const testDomain = `
version: "3.1"
slots:
  city:
    type: text
    mappings: []
  count:
    type: float
    initial_value: 1.0
  tags:
    type: list
    initial_value: []
forms:
  f_form:
    required_slots: [city]
session_config:
  session_expiration_time: 30
  carry_over_slots_to_new_session: false
`

func TestDomainSlots(t *testing.T) {
	d, err := tracker.ParseDomain("domain.yml", []byte(testDomain))
	if err != nil {
		t.Fatal(err)
	}
	if d.Session.ExpirationMinutes != 30 || d.Session.CarryOverSlots {
		t.Errorf("session config %+v", d.Session)
	}
	a := newAPI(t, tracker.NewMemoryStore(), func(o *tracker.HandlerOptions) { o.Domain = d })
	r := a.do("POST", "/conversations/c1/tracker/events", `[{"event": "slot", "timestamp": 2, "name": "tags", "value": "x"}, {"event": "slot", "timestamp": 3, "name": "unknown", "value": 1}]`)
	// Domain order, Rasa's added slots last, list slots wrap one value,
	// slots the domain lacks ignored.
	want := `{"city":null,"count":1.0,"tags":["x"],"requested_slot":null,"session_started_metadata":null}`
	if got := field(t, r.body, "slots"); r.status != 200 || got != want {
		t.Fatalf("slots = %s (%d), want %s", got, r.status, want)
	}
	r = a.do("POST", "/conversations/c1/tracker/events", `{"event": "reset_slots", "timestamp": 4}`)
	if got := field(t, r.body, "slots"); got != `{"city":null,"count":1.0,"tags":[],"requested_slot":null,"session_started_metadata":null}` {
		t.Errorf("after reset_slots: %s", got)
	}
	for _, bad := range []string{"slots: {a: {initial_value: 1}}", "slots: {a: {type: nope}}", "slots: [a]", "session_config: {session_expiration_time: soon}"} {
		if _, err := tracker.ParseDomain("d.yml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "d.yml line") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestModelIDsInAppendedEvents(t *testing.T) {
	a := newAPI(t, tracker.NewMemoryStore(), func(o *tracker.HandlerOptions) { o.ModelID, o.AssistantID = "m1", "bot" })
	a.do("POST", "/conversations/c1/tracker/events", `{"event": "user", "timestamp": 2, "text": "hi", "parse_data": {}, "metadata": {"model_id": "own"}}`)
	got := a.published()
	if len(got) != 4 {
		t.Fatalf("published %d", len(got))
	}
	if want := `{"sender_id": "c1", "event": "action", "timestamp": 1.0, "metadata": {"model_id": "m1", "assistant_id": "bot"}, "name": "action_session_start", "policy": null, "confidence": 1.0, "action_text": null, "hide_rule_turn": false}`; got[0] != want {
		t.Errorf("session start:\n got %s\nwant %s", got[0], want)
	}
	// An event's own model_id is kept; parse_data keeps the posted metadata.
	if want := `{"sender_id": "c1", "event": "user", "timestamp": 2, "metadata": {"model_id": "own", "assistant_id": "bot"}, "text": "hi", "parse_data": {"intent": {}, "entities": [], "text": "hi", "message_id": null, "metadata": {"model_id": "own"}}, "input_channel": null, "message_id": null}`; got[3] != want {
		t.Errorf("user:\n got %s\nwant %s", got[3], want)
	}
	// PUT is Rasa's from_dict: no model ids.
	a.do("PUT", "/conversations/c2/tracker/events", `[{"event": "pause", "timestamp": 1}]`)
	if last := a.published()[4]; last != `{"sender_id": "c2", "event": "pause", "timestamp": 1}` {
		t.Errorf("PUT published %s", last)
	}
}

func TestRasaAppendStoresRepeats(t *testing.T) {
	body := `[{"event": "action", "timestamp": 1, "name": "action_session_start"}, {"event": "session_started", "timestamp": 1}, {"event": "pause", "timestamp": 2}]`
	for _, rasa := range []bool{false, true} {
		a := newAPI(t, tracker.NewMemoryStore(), func(o *tracker.HandlerOptions) { o.RasaAppend = rasa })
		a.do("POST", "/conversations/c1/tracker/events", body)
		a.do("POST", "/conversations/c1/tracker/events", body)
		want := 3 // begins with a session start: none added; the repeat skipped
		if rasa {
			want = 6
		}
		if got := len(a.stored("c1")); got != want || len(a.published()) != want {
			t.Errorf("RasaAppend %v: stored %d, published %d, want %d", rasa, got, len(a.published()), want)
		}
	}
}

func TestUnknownTypesRefused(t *testing.T) {
	a := newAPI(t, tracker.NewMemoryStore(), nil)
	for _, body := range []string{`{"event": "stack", "timestamp": 1, "update": "[]"}`, `[{"event": "pause"}, {"event": "wrong_action"}]`} {
		r := a.do("POST", "/conversations/c1/tracker/events", body)
		if r.status != 400 || !strings.Contains(r.body, "unknown event type") {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	if len(a.stored("c1")) != 0 || len(a.published()) != 0 {
		t.Fatal("refused events were kept")
	}
}

func (a *api) doKey(method, path, key, body string) response {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	req.Header.Set(idempotency.Header, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

func TestIdempotencyKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		body := `[{"event": "pause"}]` // no timestamp: a plain retry would store it again
		first := a.doKey("POST", "/conversations/c1/tracker/events", "k-1", body)
		if first.status != 200 {
			t.Fatalf("first = %d %s", first.status, first.body)
		}
		again := a.doKey("POST", "/conversations/c1/tracker/events", "k-1", body)
		if again.status != 200 || again.body != first.body || again.header.Get(idempotency.ReplayedHeader) != "true" {
			t.Fatalf("retry = %d %q\n%s\nwant\n%s", again.status, again.header.Get(idempotency.ReplayedHeader), again.body, first.body)
		}
		if n, p := len(a.stored("c1")), len(a.published()); n != 4 || p != 4 {
			t.Fatalf("after the retry: stored %d, published %d; want 4", n, p)
		}
		if r := a.doKey("POST", "/conversations/c1/tracker/events", "k-1", `[{"event": "resume"}]`); r.status != 422 {
			t.Errorf("same key, other body = %d %s", r.status, r.body)
		}
		if r := a.doKey("POST", "/conversations/c1/tracker/events", "bad\tkey", body); r.status != 400 || !strings.Contains(r.body, idempotency.Header) {
			t.Errorf("invalid key = %d %s", r.status, r.body)
		}
		// Another key is another request.
		if r := a.doKey("POST", "/conversations/c1/tracker/events", "k-2", body); r.status != 200 || len(a.stored("c1")) != 5 {
			t.Errorf("new key = %d, stored %d", r.status, len(a.stored("c1")))
		}
		// A key also covers PUT.
		put := `[{"event": "pause", "timestamp": 1}]`
		p1 := a.doKey("PUT", "/conversations/c2/tracker/events", "k-3", put)
		p2 := a.doKey("PUT", "/conversations/c2/tracker/events", "k-3", put)
		if p1.status != 200 || p2.body != p1.body || p2.header.Get(idempotency.ReplayedHeader) != "true" {
			t.Errorf("PUT retry = %d %s", p2.status, p2.body)
		}
	})
}

// TestIdempotencyKeySharedStore: two handlers (two parley nodes) on one
// store; the second sees the first's record.
func TestIdempotencyKeySharedStore(t *testing.T) {
	s := tracker.NewMemoryStore()
	a, b := newAPI(t, s, nil), newAPI(t, s, nil)
	r1 := a.doKey("POST", "/conversations/c1/tracker/events", "k", `{"event": "pause"}`)
	r2 := b.doKey("POST", "/conversations/c1/tracker/events", "k", `{"event": "pause"}`)
	if r1.status != 200 || r2.body != r1.body || len(b.published()) != 0 {
		t.Fatalf("second node: %d, published %d\n%s\n%s", r2.status, len(b.published()), r1.body, r2.body)
	}
}

// TestIdempotencyKeyOneConnection: on PostgreSQL the record is read in
// the update's transaction, so a pool of one connection is enough (asking
// the pool for a second one would wait for ever).
func TestIdempotencyKeyOneConnection(t *testing.T) {
	c := postgresConfig(t)
	c.PoolSize = 1
	a := newAPI(t, openSQL(t, c), nil)
	for i := 0; i < 2; i++ {
		if r := a.doKey("POST", "/conversations/c1/tracker/events", "k", `{"event": "pause", "timestamp": 1}`); r.status != 200 {
			t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
		}
	}
	if n := len(a.stored("c1")); n != 4 {
		t.Fatalf("stored %d", n)
	}
}
