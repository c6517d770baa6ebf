package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/spool"
)

func newTestServer(t testing.TB, o Options) (*Server, *brokertest.Recorder) {
	t.Helper()
	rec := brokertest.NewRecorder()
	if o.Publisher == nil {
		o.Publisher = rec
	}
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, rec
}

func do(t testing.TB, s *Server, method, target string, body []byte, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	resp := w.Result()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &m)
	return resp, m
}

func TestIngestAcceptsNDJSONAndArray(t *testing.T) {
	s, rec := newTestServer(t, Options{})
	resp, m := do(t, s, "POST", "/events", fixtures.EventsNDJSON())
	if resp.StatusCode != 202 || m["accepted"] != float64(84) {
		t.Fatalf("ndjson: %d %v", resp.StatusCode, m)
	}
	got := rec.Events()
	for i, want := range fixtures.RasaBytes() {
		if string(got[i].RasaJSON()) != string(want) || got[i].ID == "" {
			t.Fatalf("event %d: %s (id %q)", i, got[i].RasaJSON(), got[i].ID)
		}
	}
	arr := "[" + string(fixtures.Events()[0]) + "," + string(fixtures.Events()[1]) + "]"
	if resp, m := do(t, s, "POST", "/events", []byte(arr)); resp.StatusCode != 202 || m["accepted"] != float64(2) {
		t.Fatalf("array: %d %v", resp.StatusCode, m)
	}
}

func TestIngestRejects(t *testing.T) {
	good := string(fixtures.Events()[0])
	cases := []struct {
		name   string
		opts   Options
		target string
		body   string
		status int
		want   string
		field  string // "line" or "index" expected in the body
		fval   float64
	}{
		{name: "bad line", target: "/events", body: good + "\n" + good + "\n{nope}\n", status: 400, want: "line 3: invalid JSON", field: "line", fval: 3},
		{name: "bad index", target: "/events", body: "[" + good + `,{"sender_id":"a","event":"bot","timestamp":"x"}]`, status: 400, want: "index 1: timestamp: must be a number", field: "index", fval: 1},
		{name: "empty", target: "/events", body: "", status: 400, want: "no events"},
		// Issue 14: invalid Unicode and unrepresentable timestamps.
		{name: "lone surrogate sender", target: "/events", body: `{"sender_id":"sur\udc00","event":"action","name":"a","timestamp":1}`, status: 400, want: `sender_id: contains a lone UTF-16 surrogate (\udc00)`},
		{name: "lone surrogate field", target: "/events", body: good + "\n" + `{"sender_id":"s","event":"bot","text":"\ud83d","timestamp":1}`, status: 400, want: `line 2: text: contains a lone UTF-16 surrogate (\ud83d)`, field: "line", fval: 2},
		{name: "huge timestamp", target: "/events", body: `[{"sender_id":"s","event":"action","name":"a","timestamp":1.23e29}]`, status: 400, want: "index 0: timestamp: must be Unix seconds between", field: "index", fval: 0},
		{name: "negative huge timestamp", target: "/events", body: `{"sender_id":"s","event":"action","name":"a","timestamp":-1e12}`, status: 400, want: "timestamp: must be Unix seconds between"},
		{name: "too large", opts: Options{MaxBodyBytes: 100}, target: "/events", body: good + "\n" + good, status: 413, want: "larger than 100 bytes"},
		{name: "no token", opts: Options{AuthToken: "s3"}, target: "/events", body: good, status: 401, want: "auth token"},
		{name: "wrong token", opts: Options{AuthToken: "s3"}, target: "/events?token=nope", body: good, status: 401, want: "auth token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, rec := newTestServer(t, c.opts)
			resp, m := do(t, s, "POST", c.target, []byte(c.body))
			msg, _ := m["message"].(string)
			if resp.StatusCode != c.status || !strings.Contains(msg, c.want) {
				t.Fatalf("got %d %v, want %d with %q", resp.StatusCode, m, c.status, c.want)
			}
			if c.field != "" && m[c.field] != c.fval {
				t.Fatalf("%s = %v, want %v", c.field, m[c.field], c.fval)
			}
			if n := len(rec.Events()); n != 0 {
				t.Fatalf("%d events published from a rejected request", n)
			}
		})
	}
	s, rec := newTestServer(t, Options{AuthToken: "s3"})
	for _, target := range []string{"/events?token=s3"} {
		if resp, _ := do(t, s, "POST", target, []byte(good)); resp.StatusCode != 202 {
			t.Fatalf("token in query: %d", resp.StatusCode)
		}
	}
	if resp, _ := do(t, s, "POST", "/events", []byte(good), "Authorization", "Bearer s3"); resp.StatusCode != 202 || len(rec.Events()) != 2 {
		t.Fatalf("bearer token: %d", resp.StatusCode)
	}
	// The scheme is case-insensitive (RFC 9110), as on the consumer API
	// (issue 14).
	for _, h := range []string{"bearer s3", "BEARER s3", "Bearer  s3 "} {
		if resp, m := do(t, s, "POST", "/events", []byte(good), "Authorization", h); resp.StatusCode != 202 {
			t.Fatalf("Authorization %q: %d %v", h, resp.StatusCode, m)
		}
	}
	for _, h := range []string{"Basic s3", "bearer", "Bearers3", "bearer s4"} {
		if resp, _ := do(t, s, "POST", "/events", []byte(good), "Authorization", h); resp.StatusCode != 401 {
			t.Fatalf("Authorization %q: %d, want 401", h, resp.StatusCode)
		}
	}
}

func TestIngestBackPressure(t *testing.T) {
	rec := brokertest.NewRecorder()
	rec.FailNext, rec.Err = 1, &spool.FullError{RetryAfter: 1500 * time.Millisecond, Used: 10, Max: 10}
	s, _ := newTestServer(t, Options{Publisher: rec})
	resp, m := do(t, s, "POST", "/events", fixtures.Events()[0])
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(m["message"].(string), "retry later") {
		t.Fatalf("full: %d %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), m)
	}
	rec.FailNext, rec.Err = 1, fmt.Errorf("wrapped: %w", spool.ErrTooLarge)
	if resp, _ := do(t, s, "POST", "/events", fixtures.Events()[0]); resp.StatusCode != 413 {
		t.Fatalf("too large for the spool: %d", resp.StatusCode)
	}
	rec.FailNext, rec.Err = 1, errors.New("disk on fire")
	if resp, _ := do(t, s, "POST", "/events", fixtures.Events()[0]); resp.StatusCode != 503 {
		t.Fatalf("publisher error: %d", resp.StatusCode)
	}
	if resp, _ := do(t, s, "POST", "/events", fixtures.Events()[0]); resp.StatusCode != 202 || len(rec.Events()) != 1 {
		t.Fatalf("recovery: %d", resp.StatusCode)
	}
}

func TestOpsEndpoints(t *testing.T) {
	failing := errors.New("broker down")
	s, _ := newTestServer(t, Options{Version: "v9", Checks: []Check{
		{Name: "store", Probe: func(context.Context) error { return nil }},
		{Name: "broker kafka", Probe: func(context.Context) error { return failing }},
	}})
	if resp, m := do(t, s, "GET", "/version", nil); resp.StatusCode != 200 || m["version"] != "v9" {
		t.Fatalf("version: %v", m)
	}
	if resp, m := do(t, s, "GET", "/health", nil); resp.StatusCode != 200 || m["status"] != "ok" {
		t.Fatalf("health: %v", m)
	}
	resp, m := do(t, s, "GET", "/ready", nil)
	if resp.StatusCode != 503 || m["status"] != "not ready" || !strings.Contains(mustJSON(m["checks"]), `"error":"broker down"`) {
		t.Fatalf("ready: %d %v", resp.StatusCode, m)
	}
	req := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), "Hello from parley: v9") {
		t.Fatalf("root: %q", w.Body.String())
	}
	do(t, s, "POST", "/events", fixtures.Events()[0])
	req = httptest.NewRequest("GET", "/metrics", nil)
	w = httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), `parley_events_received_total{endpoint="events"} 1`) || !strings.Contains(w.Body.String(), "go_goroutines") {
		t.Fatalf("metrics missing:\n%.2000s", w.Body.String())
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestServeShutdownDrains starts a real listener, holds a request in the
// publisher, cancels the server and checks the request still completes.
func TestServeShutdownDrains(t *testing.T) {
	release, inside := make(chan struct{}), make(chan struct{}, 1)
	pub := publisherFunc(func(ctx context.Context, evs ...event.Event) error {
		inside <- struct{}{}
		<-release
		return nil
	})
	s, _ := newTestServer(t, Options{Addr: "127.0.0.1:0", Publisher: pub})
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 10*time.Second) }()
	respc := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/events", "application/json", bytes.NewReader(fixtures.Events()[0]))
		if err != nil {
			respc <- -1
			return
		}
		resp.Body.Close()
		respc <- resp.StatusCode
	}()
	<-inside // the request is in the publisher: shut down now
	cancel()
	close(release)
	if code := <-respc; code != 202 {
		t.Fatalf("request in flight during shutdown got %d", code)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// TestUnroutedRequestsAnswerJSON: a path no route takes, or a method the
// path does not allow, gets parley's JSON error like every other error,
// not the mux's plain text (issue 14).
func TestUnroutedRequestsAnswerJSON(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	cases := []struct {
		method, target string
		status         int
		allow, msg     string
	}{
		{"DELETE", "/events", 405, "POST", "method DELETE is not allowed on /events (allowed: POST)"},
		{"GET", "/events", 405, "POST", "method GET is not allowed on /events (allowed: POST)"},
		{"POST", "/health", 405, "GET, HEAD", "method POST is not allowed on /health"},
		{"GET", "/nothing/here", 404, "", "no endpoint GET /nothing/here"},
		{"PUT", "/", 405, "GET, HEAD", "method PUT is not allowed on /"},
	}
	for _, c := range cases {
		resp, m := do(t, s, c.method, c.target, nil)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/json" || m["error_code"] != float64(c.status*100) {
			t.Errorf("%s %s: %d %q %v, want %d JSON", c.method, c.target, resp.StatusCode, resp.Header.Get("Content-Type"), m, c.status)
			continue
		}
		if msg, _ := m["message"].(string); !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s: message %q, want %q", c.method, c.target, msg, c.msg)
		}
		if c.allow != "" && resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.target, resp.Header.Get("Allow"), c.allow)
		}
	}
}
