package tracker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/tracker"
)

// storeKinds are the stores every API test runs on.
var storeKinds = []struct {
	name string
	open func(t *testing.T) tracker.Store
}{
	{"memory", func(*testing.T) tracker.Store { return tracker.NewMemoryStore() }},
	{"sqlite", func(t *testing.T) tracker.Store { return openSQL(t, sqliteConfig(t)) }},
	{"postgres", func(t *testing.T) tracker.Store { return openSQL(t, postgresConfig(t)) }},
}

// api is a conversation API on a real HTTP server.
type api struct {
	t     *testing.T
	url   string
	store tracker.Store
	rec   *brokertest.Recorder
}

var fixedNow = time.Unix(1, 0) // before the posted events, so session starts come first in time too

func newAPI(t *testing.T, s tracker.Store, mod func(*tracker.HandlerOptions)) *api {
	t.Helper()
	rec := brokertest.NewRecorder()
	o := tracker.HandlerOptions{Store: s, Publisher: rec, Version: "9.9.9", Now: func() time.Time { return fixedNow }}
	if mod != nil {
		mod(&o)
	}
	h, err := tracker.NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL, store: s, rec: rec}
}

type response struct {
	status int
	body   string
	header http.Header
}

func (a *api) do(method, path, body string) response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
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

// field returns a top-level field of a JSON object body as compact JSON.
func field(t *testing.T, body, key string) string {
	t.Helper()
	v, err := event.ParseValue([]byte(body))
	if err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
	f, ok := v.Get(key)
	if !ok {
		t.Fatalf("response has no %q: %s", key, body)
	}
	return string(f.AppendJSON(nil, event.FormatCompact))
}

func (a *api) stored(id string) []string {
	a.t.Helper()
	evs, err := a.store.Retrieve(context.Background(), id)
	if err != nil {
		a.t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Body().AppendJSON(nil, event.FormatRasa))
	}
	return out
}

func (a *api) published() []string {
	var out []string
	for _, ev := range a.rec.Events() {
		out = append(out, string(ev.RasaJSON()))
	}
	return out
}

func forEachStore(t *testing.T, fn func(t *testing.T, a *api)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { fn(t, newAPI(t, k.open(t), nil)) })
	}
}

// newState is Rasa's GET tracker of an unknown conversation: the session
// start fetch_full_tracker_with_initial_session runs (and does not save).
const newState = `{"sender_id":"new","slots":{},"latest_message":{"intent":{},"entities":[],"text":null,"message_id":null,"metadata":{}},"latest_event_time":1.0000000000000004,"followup_action":null,"paused":false,` +
	`"events":[{"event":"action","timestamp":1.0,"name":"action_session_start","policy":null,"confidence":1.0,"action_text":null,"hide_rule_turn":false},` +
	`{"event":"session_started","timestamp":1.0000000000000002},` +
	`{"event":"action","timestamp":1.0000000000000004,"name":"action_listen","policy":null,"confidence":null,"action_text":null,"hide_rule_turn":false}],` +
	`"latest_input_channel":null,"active_loop":{},"latest_action":{"action_name":"action_listen"},"latest_action_name":"action_listen"}`

func TestAPIGetUnknownConversation(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		r := a.do("GET", "/conversations/new/tracker", "")
		if r.status != 200 || r.body != newState || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET unknown = %d %s\n%s", r.status, r.header.Get("Content-Type"), r.body)
		}
		if got := a.stored("new"); len(got) != 0 {
			t.Errorf("GET stored %d events", len(got))
		}
	})
}

func TestAPIPostAndGet(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		one := `{"event": "slot", "timestamp": 1.5, "name": "city", "value": "Berlin"}`
		r := a.do("POST", "/conversations/c1/tracker/events", one)
		if r.status != 200 {
			t.Fatalf("POST one object = %d %s", r.status, r.body)
		}
		if got := field(t, r.body, "slots"); got != `{"city":"Berlin"}` {
			t.Errorf("slots = %s", got)
		}
		list := `[{"event": "action", "timestamp": 2, "name": "action_listen"},
		          {"event": "user", "timestamp": 3, "text": "hi", "parse_data": {"intent": {"name": "greet"}}, "input_channel": "rest"},
		          {"event": "pause", "timestamp": 4}]`
		r = a.do("POST", "/conversations/c1/tracker/events?include_events=ALL", list)
		if r.status != 200 {
			t.Fatalf("POST list = %d %s", r.status, r.body)
		}
		// The latest session as Rasa's SQL store loads it: from
		// session_started on, by timestamp (action_session_start is older).
		if got := field(t, r.body, "events"); strings.Count(got, `"event"`) != 6 || strings.Contains(got, "action_session_start") {
			t.Errorf("events = %s", got)
		}
		for key, want := range map[string]string{
			"paused": "true", "latest_input_channel": `"rest"`, "latest_event_time": "4",
			"latest_message":     `{"intent":{"name":"greet"},"entities":[],"text":"hi","message_id":null,"metadata":{}}`,
			"latest_action_name": `"action_listen"`, "followup_action": "null", "sender_id": `"c1"`,
		} {
			if got := field(t, r.body, key); got != want {
				t.Errorf("%s = %s, want %s", key, got, want)
			}
		}
		// The events are published once each, with the conversation id and
		// an ID, in Rasa's bytes.
		// The first POST started a session, as Rasa's append path does.
		pub := a.rec.Events()
		if len(pub) != 7 {
			t.Fatalf("published %d events, want 7", len(pub))
		}
		ids := map[string]bool{}
		for _, ev := range pub {
			if ev.SenderID != "c1" || ev.ID == "" || ids[ev.ID] {
				t.Errorf("published event sender %q id %q", ev.SenderID, ev.ID)
			}
			ids[ev.ID] = true
		}
		if got := string(pub[3].RasaJSON()); got != `{"sender_id": "c1", "event": "slot", "timestamp": 1.5, "name": "city", "value": "Berlin"}` {
			t.Errorf("published bytes = %s", got)
		}
		get := a.do("GET", "/conversations/c1/tracker?include_events=applied", "")
		if get.status != 200 || field(t, get.body, "paused") != "true" {
			t.Fatalf("GET = %d %s", get.status, get.body)
		}
		if got := a.do("GET", "/conversations/c1/tracker?include_events=NONE", "").body; field(t, got, "events") != "null" {
			t.Errorf("NONE: %s", got)
		}
		// until: the state at time 2.5.
		until := a.do("GET", "/conversations/c1/tracker?until=2.5&include_events=ALL", "")
		if got := field(t, until.body, "latest_event_time"); got != "2" {
			t.Errorf("until=2.5: latest_event_time %s", got)
		}
		if got := field(t, until.body, "paused"); got != "false" {
			t.Errorf("until=2.5: paused %s", got)
		}
		if bad := a.do("GET", "/conversations/c1/tracker?until=soon", ""); bad.status != 200 || field(t, bad.body, "paused") != "true" {
			t.Errorf("until=soon is ignored as in Rasa: %d %s", bad.status, bad.body)
		}
	})
}

func TestAPITimestampFilled(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		body := `[{"event": "pause"}, {"timestamp": null, "event": "resume"}, {"event": "pause", "timestamp": 0}]`
		if r := a.do("POST", "/conversations/c1/tracker/events", body); r.status != 200 {
			t.Fatalf("POST = %d %s", r.status, r.body)
		}
		// Rasa stamps posted events as it reads the body, before the
		// session start it then logs: earlier times, later positions.
		want := []string{
			`{"event": "action", "timestamp": 1.0000000000000007, "name": "action_session_start", "policy": null, "confidence": 1.0, "action_text": null, "hide_rule_turn": false}`,
			`{"event": "session_started", "timestamp": 1.0000000000000009}`,
			`{"event": "action", "timestamp": 1.000000000000001, "name": "action_listen", "policy": null, "confidence": null, "action_text": null, "hide_rule_turn": false}`,
			`{"event": "pause", "timestamp": 1.0}`,
			`{"event": "resume", "timestamp": 1.0000000000000002}`,
			`{"event": "pause", "timestamp": 1.0000000000000004}`,
		}
		if got := a.stored("c1"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("stored:\n%s", strings.Join(got, "\n"))
		}
	})
}

// TestAPIRepostPublishesOnlyNew is the idempotency contract: what is
// stored already is neither stored nor published again.
func TestAPIRepostPublishesOnlyNew(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		evs := []string{
			`{"event": "action", "timestamp": 1, "name": "action_listen"}`,
			`{"event": "user", "timestamp": 2, "text": "hi", "parse_data": {}}`,
			`{"event": "bot", "timestamp": 3, "text": "hey"}`,
		}
		post := func(n int) {
			t.Helper()
			if r := a.do("POST", "/conversations/c1/tracker/events", "["+strings.Join(evs[:n], ",")+"]"); r.status != 200 {
				t.Fatalf("POST = %d %s", r.status, r.body)
			}
		}
		post(2)
		post(2) // a retry: nothing new
		post(3) // the tracker again with one more event
		post(1)
		// 3 for the session start, 3 posted.
		if got := len(a.rec.Events()); got != 6 {
			t.Fatalf("published %d events, want 6:\n%s", got, strings.Join(a.published(), "\n"))
		}
		if got := a.stored("c1"); len(got) != 6 {
			t.Fatalf("stored %d events, want 6", len(got))
		}
		// Two identical events in one request are two events.
		dup := `{"event": "pause", "timestamp": 9}`
		a.do("POST", "/conversations/c1/tracker/events", "["+dup+","+dup+"]")
		if got := len(a.stored("c1")); got != 8 {
			t.Fatalf("stored %d events after posting two identical new ones, want 8", got)
		}
	})
}

func TestAPIPut(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		a.do("POST", "/conversations/c1/tracker/events", `[{"event": "pause", "timestamp": 1}, {"event": "resume", "timestamp": 2}, {"event": "slot", "timestamp": 3, "name": "a", "value": 1}]`)
		before := len(a.rec.Events())
		put := `[{"event": "resume", "timestamp": 2}, {"event": "slot", "timestamp": 5, "name": "b", "value": 2}, {"event": "resume", "timestamp": 2}]`
		r := a.do("PUT", "/conversations/c1/tracker/events?include_events=ALL", put)
		if r.status != 200 {
			t.Fatalf("PUT = %d %s", r.status, r.body)
		}
		if got := field(t, r.body, "slots"); got != `{"b":2}` {
			t.Errorf("slots after PUT = %s", got)
		}
		if got := a.stored("c1"); len(got) != 3 || !strings.Contains(got[1], `"b"`) {
			t.Fatalf("stored after PUT: %q", got)
		}
		// Published: the events of the new list not in the old one, as a
		// multiset (the second resume is new).
		pub := a.published()[before:]
		if len(pub) != 2 || !strings.Contains(pub[0], `"name": "b"`) || !strings.Contains(pub[1], `"resume"`) {
			t.Fatalf("PUT published %q", pub)
		}
		if r := a.do("PUT", "/conversations/c1/tracker/events", `{"event": "pause", "timestamp": 1}`); r.status != 400 || !strings.Contains(r.body, "must be a list") {
			t.Errorf("PUT of one object = %d %s", r.status, r.body)
		}
		if r := a.do("PUT", "/conversations/c1/tracker/events", `[]`); r.status != 200 || field(t, r.body, "events") != "[]" {
			t.Errorf("PUT [] = %d %s", r.status, r.body)
		}
		if got := a.stored("c1"); len(got) != 0 {
			t.Errorf("PUT [] left %d events", len(got))
		}
	})
}

func TestAPIBadInput(t *testing.T) {
	help := `"help":"https:\/\/rasa.com\/docs\/rasa\/pages\/http-api"`
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     []string // substrings of the body
	}{
		{name: "bad json", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": `, status: 400,
			want: []string{`"reason":"BadRequest"`, `"message":"Failed when parsing body as json: `}},
		{name: "empty body", method: "POST", path: "/conversations/c1/tracker/events", body: ``, status: 400, want: []string{"Failed when parsing body as json"}},
		{name: "not an object", method: "POST", path: "/conversations/c1/tracker/events", body: `"pause"`, status: 400, want: []string{"must be an event object or a list"}},
		{name: "empty list", method: "POST", path: "/conversations/c1/tracker/events", body: `[]`, status: 400,
			want: []string{`"message":"Couldn't extract a proper event from the request body.","reason":"BadRequest","details":{"parameter":"","in":"body"},"help":null,"code":400`}},
		{name: "unknown type", method: "POST", path: "/conversations/c1/tracker/events", body: `[{"event": "pause", "timestamp": 1}, {"event": "topic", "timestamp": 1}]`, status: 400,
			want: []string{`Failed to validate the events format. For more information about the format visit the docs. Error: event 1: event: unknown event type \"topic\"`, `"details":{"errors":[{"index":1,"field":"event","message":"unknown event type`, help}},
		{name: "missing event", method: "POST", path: "/conversations/c1/tracker/events", body: `{"timestamp": 1}`, status: 400, want: []string{`{"index":0,"field":"event","message":"is missing"}`}},
		{name: "event not a string", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": 5}`, status: 400, want: []string{`"field":"event","message":"must be a string, got number"`}},
		{name: "bad timestamp", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "pause", "timestamp": "now"}`, status: 400, want: []string{`"field":"timestamp"`}},
		{name: "bad metadata", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "pause", "timestamp": 1, "metadata": []}`, status: 400, want: []string{`"field":"metadata"`}},
		{name: "user without parse_data", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "user", "timestamp": 1, "text": "hi"}`, status: 400, want: []string{`"field":"parse_data","message":"is missing`}},
		{name: "bad intent", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "user", "timestamp": 1, "parse_data": {"intent": {"name": 3}}}`, status: 400, want: []string{`"field":"parse_data.intent.name"`}},
		{name: "slot without value", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "slot", "timestamp": 1, "name": "a"}`, status: 400, want: []string{`"field":"value","message":"is missing`}},
		{name: "slot without name", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "slot", "timestamp": 1, "value": 1}`, status: 400, want: []string{`"field":"name"`}},
		{name: "entities without entity", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "entities", "timestamp": 1, "entities": [{"value": 1}]}`, status: 400, want: []string{`"field":"entities[0].entity","message":"is missing"`}},
		{name: "action without name", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "action", "timestamp": 1}`, status: 400, want: []string{`an action event needs a name or an action_text`}},
		{name: "bad hide_rule_turn", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "action", "timestamp": 1, "name": "a", "hide_rule_turn": null}`, status: 400, want: []string{`"field":"hide_rule_turn"`}},
		{name: "several errors", method: "POST", path: "/conversations/c1/tracker/events", body: `[{"event": "slot"}, 7]`, status: 400, want: []string{`{"index":0,"field":"name"`, `{"index":1,"field":"","message":"must be an object, got number"}`}},
		{name: "bad include_events", method: "POST", path: "/conversations/c1/tracker/events?include_events=SOME", body: `{"event": "pause", "timestamp": 1}`, status: 400,
			want: []string{`{"version":"9.9.9","status":"failure","message":"Invalid parameter value for 'include_events'. Should be one of NONE, APPLIED, AFTER_RESTART, ALL","reason":"BadRequest","details":{"parameter":"include_events","in":"query"},"help":null,"code":400}`}},
		{name: "bad include_events get", method: "GET", path: "/conversations/c1/tracker?include_events=", status: 400, want: []string{"Invalid parameter value for 'include_events'"}},
		// Issue 14: invalid Unicode and unrepresentable timestamps never
		// reach a table.
		{name: "lone surrogate", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "user", "timestamp": 1, "text": "sur\udc00", "parse_data": {}}`, status: 400,
			want: []string{`"field":"text","message":"contains a lone UTF-16 surrogate (\\udc00)`}},
		{name: "lone surrogate in a key", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "pause", "timestamp": 1, "metadata": {"k\ud800": 1}}`, status: 400,
			want: []string{`"field":"metadata.\"k\\ud800\"","message":"key contains a lone UTF-16 surrogate`}},
		{name: "huge timestamp", method: "POST", path: "/conversations/c1/tracker/events", body: `{"event": "pause", "timestamp": 1.23e29}`, status: 400,
			want: []string{`"field":"timestamp","message":"must be Unix seconds between`}},
		{name: "invalid UTF-8 id", method: "POST", path: "/conversations/%FF%FE/tracker/events", body: `{"event": "pause", "timestamp": 1}`, status: 400,
			want: []string{`The conversation id (path segment \"%FF%FE\") is not valid UTF-8.`}},
		{name: "surrogate id", method: "GET", path: "/conversations/a%ED%B0%80/tracker", status: 400, want: []string{`path segment`}},
		{name: "unknown path", method: "GET", path: "/conversations/c1/story", status: 404, want: []string{`"reason":"NotFound"`, `"code":404`}},
		{name: "no id", method: "GET", path: "/conversations/tracker", status: 404, want: []string{`"reason":"NotFound"`}},
		{name: "delete", method: "DELETE", path: "/conversations/c1/tracker/events", status: 405, want: []string{`"reason":"MethodNotAllowed"`}},
		{name: "get events path", method: "GET", path: "/conversations/c1/tracker/events", status: 405, want: []string{`"code":405`}},
		{name: "post tracker path", method: "POST", path: "/conversations/c1/tracker", body: `{}`, status: 405, want: []string{`"code":405`}},
	}
	forEachStore(t, func(t *testing.T, a *api) {
		for _, tt := range tests {
			r := a.do(tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Errorf("%s: status %d, want %d: %s", tt.name, r.status, tt.status, r.body)
				continue
			}
			if !strings.HasPrefix(r.body, `{"version":"9.9.9","status":"failure","message":`) || !strings.HasSuffix(r.body, fmt.Sprintf(`"code":%d}`, tt.status)) {
				t.Errorf("%s: not Rasa's error shape: %s", tt.name, r.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("%s: body lacks %s:\n%s", tt.name, w, r.body)
				}
			}
		}
		if got := a.stored("c1"); len(got) != 0 {
			t.Errorf("bad requests stored %d events", len(got))
		}
		if got := a.rec.Events(); len(got) != 0 {
			t.Errorf("bad requests published %d events", len(got))
		}
	})
}

func TestAPIAuth(t *testing.T) {
	a := newAPI(t, tracker.NewMemoryStore(), func(o *tracker.HandlerOptions) { o.AuthToken = "s3cret" })
	want401 := `{"version":"9.9.9","status":"failure","message":"User is not authenticated.","reason":"NotAuthenticated","details":{},"help":"https:\/\/rasa.com\/docs\/rasa\/user-guide\/configuring-http-api\/#security-considerations","code":401}`
	for _, path := range []string{"/conversations/c1/tracker", "/conversations/c1/tracker?token=wrong", "/conversations/c1/tracker?token="} {
		if r := a.do("GET", path, ""); r.status != 401 || r.body != want401 {
			t.Errorf("GET %s = %d %s", path, r.status, r.body)
		}
	}
	if r := a.do("POST", "/conversations/c1/tracker/events", `{"event": "pause", "timestamp": 1}`); r.status != 401 {
		t.Errorf("POST without token = %d", r.status)
	}
	if r := a.do("PUT", "/conversations/c1/tracker/events?token=nope", `[]`); r.status != 401 {
		t.Errorf("PUT with a wrong token = %d", r.status)
	}
	if len(a.rec.Events()) != 0 || len(a.stored("c1")) != 0 {
		t.Fatal("an unauthenticated request wrote")
	}
	if r := a.do("POST", "/conversations/c1/tracker/events?token=s3cret", `{"event": "pause", "timestamp": 1}`); r.status != 200 {
		t.Errorf("POST with ?token = %d %s", r.status, r.body)
	}
	// The scheme is case-insensitive (RFC 9110), as on the consumer API
	// (issue 14).
	for h, want := range map[string]int{"Bearer s3cret": 200, "bearer s3cret": 200, "BEARER s3cret": 200, "Basic s3cret": 401, "bearer wrong": 401} {
		req, _ := http.NewRequest("GET", a.url+"/conversations/c1/tracker", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET with Authorization %q = %d, want %d", h, resp.StatusCode, want)
		}
	}
	// Unknown paths are 404 before authentication, as in Rasa.
	if r := a.do("GET", "/conversations/c1/nothing", ""); r.status != 404 {
		t.Errorf("unknown path without token = %d", r.status)
	}
}

func TestAPIBodyLimit(t *testing.T) {
	a := newAPI(t, tracker.NewMemoryStore(), func(o *tracker.HandlerOptions) { o.MaxBodyBytes = 100 })
	small := `{"event": "pause", "timestamp": 1}`
	big := `{"event": "bot", "timestamp": 1, "text": "` + strings.Repeat("x", 200) + `"}`
	if r := a.do("POST", "/conversations/c1/tracker/events", small); r.status != 200 {
		t.Fatalf("small body = %d %s", r.status, r.body)
	}
	r := a.do("POST", "/conversations/c1/tracker/events", big)
	if r.status != 413 || !strings.Contains(r.body, `"reason":"PayloadTooLarge"`) || !strings.Contains(r.body, "100 bytes") {
		t.Fatalf("big body = %d %s", r.status, r.body)
	}
	if r := a.do("PUT", "/conversations/c1/tracker/events", "["+big+"]"); r.status != 413 {
		t.Fatalf("big PUT = %d", r.status)
	}
	if got := len(a.stored("c1")); got != 4 {
		t.Errorf("stored %d events", got)
	}
}

func TestAPIConversationIDs(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		ev := `{"event": "slot", "timestamp": 1, "name": "s", "value": 1}`
		for _, path := range []string{
			"/conversations/a/b/tracker/events",
			"/conversations/a%2Fb/tracker/events", // the same conversation, escaped
			"/conversations/x/tracker/tracker/events",
			"/conversations/%C3%BCn%C3%AF%20c%C3%B6de/tracker/events",
		} {
			if r := a.do("POST", path, ev); r.status != 200 {
				t.Fatalf("POST %s = %d %s", path, r.status, r.body)
			}
		}
		for path, sender := range map[string]string{
			"/conversations/a/b/tracker":        "a/b",
			"/conversations/x/tracker/tracker":  "x/tracker",
			"/conversations/ünï%20cöde/tracker": "ünï cöde",
		} {
			r := a.do("GET", path, "")
			if got := field(t, r.body, "sender_id"); r.status != 200 || got != `"`+sender+`"` {
				t.Errorf("GET %s = %d sender %s", path, r.status, got)
			}
			if got := field(t, r.body, "events"); strings.Count(got, `"slot"`) != 1 {
				t.Errorf("GET %s events = %s", path, got)
			}
		}
		keys, err := a.store.Keys(context.Background())
		if err != nil || strings.Join(keys, "|") != "a/b|x/tracker|ünï cöde" {
			t.Errorf("Keys = %q, %v", keys, err)
		}
		pub := a.rec.Events()
		if len(pub) != 12 || pub[0].SenderID != "a/b" {
			t.Errorf("published %d events, first for %q", len(pub), pub[0].SenderID)
		}
	})
}

// TestAPIPublishFailure: when publishing fails nothing is stored, the
// client is told to retry, and the retry publishes and stores the events.
func TestAPIPublishFailure(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		a.rec.FailNext = 1
		body := `[{"event": "pause", "timestamp": 1}, {"event": "resume", "timestamp": 2}]`
		r := a.do("POST", "/conversations/c1/tracker/events", body)
		if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "none were stored") {
			t.Fatalf("POST with a failing publisher = %d %v %s", r.status, r.header, r.body)
		}
		if got := a.stored("c1"); len(got) != 0 {
			t.Fatalf("stored %d events although publishing failed", len(got))
		}
		if r := a.do("POST", "/conversations/c1/tracker/events", body); r.status != 200 {
			t.Fatalf("retry = %d %s", r.status, r.body)
		}
		if got, pub := len(a.stored("c1")), len(a.rec.Events()); got != 5 || pub != 5 {
			t.Fatalf("after the retry: %d stored, %d published", got, pub)
		}
	})
}

// TestAPIPublishErrorKinds: a full spool's wait becomes Retry-After; a
// permanent failure is the client's problem (400), not a retry.
func TestAPIPublishErrorKinds(t *testing.T) {
	full := errors.New("spool is full")
	a := newAPI(t, tracker.NewMemoryStore(), func(o *tracker.HandlerOptions) {
		o.RetryAfter = func(err error) (time.Duration, bool) { return 2500 * time.Millisecond, errors.Is(err, full) }
	})
	a.rec.FailNext, a.rec.Err = 1, full
	r := a.do("POST", "/conversations/c1/tracker/events", `{"event": "pause", "timestamp": 1}`)
	if r.status != 503 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("full: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	a.rec.FailNext, a.rec.Err = 1, broker.Permanent(errors.New("event too large"))
	r = a.do("POST", "/conversations/c1/tracker/events", `{"event": "pause", "timestamp": 1}`)
	if r.status != 400 || !strings.Contains(r.body, "event too large") || r.header.Get("Retry-After") != "" {
		t.Fatalf("permanent: %d %s", r.status, r.body)
	}
	if len(a.stored("c1")) != 0 {
		t.Fatal("stored although publishing failed")
	}
}

// failingStore fails writes after the update function ran, as a database
// that breaks between publish and commit.
type failingStore struct {
	tracker.Store
	mu   sync.Mutex
	fail int
}

func (s *failingStore) UpdateKeyed(ctx context.Context, id, key string, fn tracker.KeyedUpdateFunc) error {
	s.mu.Lock()
	fail := s.fail > 0
	if fail {
		s.fail--
	}
	s.mu.Unlock()
	if !fail {
		return s.Store.UpdateKeyed(ctx, id, key, fn)
	}
	return s.Store.UpdateKeyed(ctx, id, key, func(cur []event.Event, rec *idempotency.Outcome) (tracker.Change, error) {
		if _, err := fn(cur, rec); err != nil {
			return tracker.Change{}, err
		}
		return tracker.Change{}, errors.New("disk on fire")
	})
}

// TestAPIStoreFailureAfterPublish: the events were published but not
// stored; the client's retry publishes them again (a duplicate, never a
// loss) and stores them.
func TestAPIStoreFailureAfterPublish(t *testing.T) {
	fs := &failingStore{Store: tracker.NewMemoryStore(), fail: 1}
	a := newAPI(t, fs, nil)
	body := `{"event": "pause", "timestamp": 1}`
	r := a.do("POST", "/conversations/c1/tracker/events", body)
	if r.status != 500 || !strings.Contains(r.body, `"reason":"ConversationError"`) || !strings.Contains(r.body, "disk on fire") {
		t.Fatalf("POST with a failing store = %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/conversations/c1/tracker/events", body); r.status != 200 {
		t.Fatalf("retry = %d %s", r.status, r.body)
	}
	if pub, st := len(a.rec.Events()), len(a.stored("c1")); pub != 8 || st != 4 {
		t.Fatalf("published %d (want 8: at least once), stored %d (want 4)", pub, st)
	}
}

// TestAPIConcurrentPosts: clients posting overlapping trackers of one
// conversation at once; every event is stored and published exactly once.
func TestAPIConcurrentPosts(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *api) {
		var evs []string
		for i := 0; i < 8; i++ {
			evs = append(evs, fmt.Sprintf(`{"event": "slot", "timestamp": %d, "name": "n", "value": %d}`, i+1, i))
		}
		var wg sync.WaitGroup
		for c := 0; c < 16; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 1 + c%len(evs)
				body := "[" + strings.Join(evs[:n], ",") + "]"
				req, _ := http.NewRequest("POST", a.url+"/conversations/busy/tracker/events", strings.NewReader(body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("POST = %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		if pub, st := len(a.rec.Events()), len(a.stored("busy")); pub != len(evs)+3 || st != len(evs)+3 {
			t.Fatalf("published %d, stored %d; want %d each", pub, st, len(evs)+3)
		}
	})
}

// rasaFixtureStates loads Rasa's states for the fixture conversations from
// testdata/rasa_states.json (see gen_rasa.py).
func rasaFixtureStates(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/rasa_states.json")
	if err != nil {
		t.Fatal(err)
	}
	root, err := event.ParseValue(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, c := range root.Elems() {
		name, _ := c.Get("name")
		sender, ok := strings.CutPrefix(name.Str(), "fixture:")
		if !ok {
			continue
		}
		sts, _ := c.Get("states")
		out[sender] = map[string]string{}
		for _, m := range sts.Members() {
			out[sender][m.Key] = m.Value.Str()
		}
	}
	return out
}

// withoutEvents drops "events" from a tracker state, whose other fields
// must match Rasa's even though Rasa would re-serialize the events.
func withoutEvents(t *testing.T, body string) string {
	t.Helper()
	v, err := event.ParseValue([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Without("events").AppendJSON(nil, event.FormatCompact))
}

// TestAPIFixtures is the "done when" scenario: the shared fixture events,
// posted per conversation, give trackers whose derived fields are Rasa's,
// and publish each event once in exactly Rasa's bytes, also when a client
// posts its whole tracker again with one more event.
func TestAPIFixtures(t *testing.T) {
	rasa := rasaFixtureStates(t)
	forEachStore(t, func(t *testing.T, a *api) {
		type group struct {
			sender string
			lines  []string
		}
		var groups []*group
		for _, line := range fixtures.Events() {
			ev, err := event.Parse(line)
			if err != nil {
				t.Fatal(err)
			}
			if len(groups) == 0 || groups[len(groups)-1].sender != ev.SenderID {
				groups = append(groups, &group{sender: ev.SenderID})
			}
			g := groups[len(groups)-1]
			g.lines = append(g.lines, string(ev.Body().AppendJSON(nil, event.FormatCompact)))
		}
		if len(groups) != 3 || len(rasa) != 3 {
			t.Fatalf("%d fixture conversations, %d Rasa states", len(groups), len(rasa))
		}
		for _, g := range groups {
			r := a.do("POST", "/conversations/"+g.sender+"/tracker/events", "["+strings.Join(g.lines, ",")+"]")
			if r.status != 200 {
				t.Fatalf("POST %s = %d %s", g.sender, r.status, r.body)
			}
		}
		// Each conversation: Rasa's session start, then each event as Rasa's
		// class re-serializes it (scripts/rasa-compare.sh checks these bytes
		// against Rasa's own conversation API code).
		var want []string
		canon := map[string][]string{}
		for _, line := range fixtures.Events() {
			ev, _ := event.Parse(line)
			if len(canon[ev.SenderID]) == 0 {
				want = append(want, "session start", "session start", "session start")
			}
			c, err := event.Canonical(ev, func() float64 { t.Fatal("fixture without timestamp"); return 0 })
			if err != nil {
				t.Fatal(err)
			}
			canon[ev.SenderID] = append(canon[ev.SenderID], string(c.Body().AppendJSON(nil, event.FormatCompact)))
			want = append(want, string(c.RasaJSON()))
		}
		got := a.published()
		if len(got) != len(want) {
			t.Fatalf("published %d events, want %d", len(got), len(want))
		}
		for i := range want {
			if want[i] == "session start" {
				if !strings.Contains(got[i], "action_session_start") && !strings.Contains(got[i], "session_started") && !strings.Contains(got[i], "action_listen") {
					t.Errorf("published event %d is not a session start event: %s", i, got[i])
				}
				continue
			}
			if got[i] != want[i] {
				t.Errorf("published event %d:\n got %s\nwant %s", i, got[i], want[i])
			}
		}
		for _, g := range groups {
			for _, v := range []string{"ALL", "APPLIED", "AFTER_RESTART", "NONE"} {
				r := a.do("GET", "/conversations/"+g.sender+"/tracker?include_events="+v, "")
				if r.status != 200 {
					t.Fatalf("GET = %d %s", r.status, r.body)
				}
				if got, want := withoutEvents(t, r.body), withoutEvents(t, rasa[g.sender][v]); got != want {
					t.Errorf("%s %s: state differs from Rasa's\n got %s\nwant %s", g.sender, v, got, want)
				}
				if v == "ALL" {
					evs, _ := event.ParseValue([]byte(field(t, r.body, "events")))
					var rest []string
					for _, e := range evs.Elems()[3:] {
						rest = append(rest, string(e.AppendJSON(nil, event.FormatCompact)))
					}
					if got, want := strings.Join(rest, ","), strings.Join(canon[g.sender], ","); got != want {
						t.Errorf("%s: events after the session start are not Rasa's:\n got %s\nwant %s", g.sender, got, want)
					}
				}
			}
		}
		// The whole tracker again, plus one event: exactly that one is new.
		g := groups[1]
		more := `{"event":"action","timestamp":1700000090.5,"name":"action_listen"}`
		r := a.do("POST", "/conversations/"+g.sender+"/tracker/events", "["+strings.Join(append(g.lines, more), ",")+"]")
		if r.status != 200 {
			t.Fatalf("re-POST = %d %s", r.status, r.body)
		}
		after := a.published()
		if len(after) != len(want)+1 {
			t.Fatalf("re-posting the tracker with one more event published %d events, want 1", len(after)-len(want))
		}
		if last := after[len(after)-1]; last != `{"sender_id": "user-42", "event": "action", "timestamp": 1700000090.5, "name": "action_listen", "policy": null, "confidence": null, "action_text": null, "hide_rule_turn": false}` {
			t.Errorf("published %s", last)
		}
		if got := len(a.stored(g.sender)); got != len(g.lines)+4 {
			t.Errorf("stored %d events, want %d", got, len(g.lines)+4)
		}
	})
}

// FuzzHandler throws arbitrary methods, paths, queries and bodies at the
// API: it must never panic, always answer JSON in a known status, and
// never store what it refused.
func FuzzHandler(f *testing.F) {
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}
	f.Add(uint8(1), "c1/tracker/events", "include_events=ALL", []byte(`[{"event": "pause", "timestamp": 1}]`))
	f.Add(uint8(0), "c1/tracker", "until=3&include_events=applied", []byte(``))
	f.Add(uint8(2), "a/b/tracker/events", "", []byte(`[{"event": "user", "timestamp": 1, "parse_data": {"entities": [{"entity": "e", "value": 1}]}}, {"event": "undo"}]`))
	f.Add(uint8(1), "x/tracker/events", "token=t", []byte(`{"event": "active_loop", "name": "f", "timestamp": 1e400}`))
	f.Add(uint8(1), "x/tracker/events", "", []byte(`[{"event": "action", "name": "f"}, {"event": "active_loop", "name": "f"}, {"event": "rewind"}, {"event": "action", "name": "f"}]`))
	f.Add(uint8(0), "%zz/tracker", "include_events=%", []byte(`[`))
	f.Fuzz(func(t *testing.T, m uint8, path, query string, body []byte) {
		s := tracker.NewMemoryStore()
		h, err := tracker.NewHandler(tracker.HandlerOptions{Store: s, Publisher: brokertest.NewRecorder(), MaxBodyBytes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		method := methods[int(m)%len(methods)]
		req := httptest.NewRequest("GET", "/", nil)
		req.Method = method
		req.URL.Path = "/conversations/" + path
		req.URL.RawQuery = query
		req.Body = io.NopCloser(bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 404, 405, 413, 503:
		default:
			t.Fatalf("%s %s?%s: status %d: %s", method, req.URL.Path, query, w.Code, w.Body)
		}
		if method != "HEAD" {
			if _, err := event.ParseValue(w.Body.Bytes()); err != nil {
				t.Fatalf("%s %s: response is not JSON (%v): %s", method, req.URL.Path, err, w.Body)
			}
		}
		if w.Code != 200 {
			keys, _ := s.Keys(context.Background())
			if len(keys) != 0 {
				t.Fatalf("status %d but stored %q", w.Code, keys)
			}
		}
	})
}
