package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/parleyhq/parley/broker/all"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/sqldb"
)

// TestGatewayDefaults is issue 4's "done when": in an empty directory, on
// the built-in defaults, posting the fixtures per sender to Rasa's
// conversation API yields the derived tracker fields and an events.db
// whose rows are Rasa's bytes, each event once even when a tracker is
// posted again with one more event.
func TestGatewayDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ep, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g, err := NewGateway(ctx, ep, GatewayOptions{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Server.Handler()

	type conv struct {
		id  string
		evs []json.RawMessage
	}
	var order []string
	byID := map[string]*conv{}
	for _, l := range fixtures.Events() {
		ev, err := event.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		c := byID[ev.SenderID]
		if c == nil {
			c = &conv{id: ev.SenderID}
			byID[ev.SenderID] = c
			order = append(order, ev.SenderID)
		}
		c.evs = append(c.evs, ev.Body().AppendJSON(nil, event.FormatCompact))
	}
	post := func(id string, evs []json.RawMessage) map[string]any {
		t.Helper()
		body, _ := json.Marshal(evs)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/conversations/"+id+"/tracker/events?include_events=ALL", bytes.NewReader(body)))
		if w.Code != 200 {
			t.Fatalf("POST %s: %d %s", id, w.Code, w.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Each conversation first without its last event, then the whole
	// tracker again: the second post must add and publish only that event.
	for _, id := range order {
		c := byID[id]
		post(id, c.evs[:len(c.evs)-1])
	}
	for _, id := range order {
		c := byID[id]
		st := post(id, c.evs)
		if st["sender_id"] != id || st["paused"] != false || st["latest_event_time"] == nil {
			t.Fatalf("tracker %s: %v", id, st)
		}
		// Rasa answers with its SQL store's latest session: the session
		// parley started (now) and the events posted since; the fixture's
		// older-timestamped events are not part of it.
		if evs := st["events"].([]any); len(evs) != 3 {
			t.Fatalf("tracker %s holds %d events, want 3", id, len(evs))
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/ready", nil))
	if w.Code != 200 {
		t.Fatalf("ready: %d %s", w.Code, w.Body)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := g.Close(cctx); err != nil {
		t.Fatal(err)
	}
	// events.db is in the order the conversations were posted: a session
	// start and the first parts, then each last event, each as Rasa's
	// event class re-serializes it.
	var rasa [][]byte
	for _, line := range fixtures.Events() {
		ev, _ := event.Parse(line)
		c, err := event.Canonical(ev, func() float64 { return 0 })
		if err != nil {
			t.Fatal(err)
		}
		rasa = append(rasa, c.RasaJSON())
	}
	sessionStart := []byte("session start")
	var want [][]byte
	idx := 0
	lastOf := map[string][]byte{}
	for _, id := range order {
		n := len(byID[id].evs)
		want = append(want, sessionStart, sessionStart, sessionStart)
		want = append(want, rasa[idx:idx+n-1]...)
		lastOf[id] = rasa[idx+n-1]
		idx += n
	}
	for _, id := range order {
		want = append(want, lastOf[id])
	}
	db, err := sqldb.Open(ctx, sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(dir, "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT data FROM events ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got [][]byte
	for rows.Next() {
		var s string
		rows.Scan(&s)
		got = append(got, []byte(s))
	}
	if len(got) != len(want) {
		t.Fatalf("events.db has %d rows, want %d (each event once)", len(got), len(want))
	}
	for i := range want {
		if bytes.Equal(want[i], sessionStart) {
			if !bytes.Contains(got[i], []byte(`"session_started"`)) && !bytes.Contains(got[i], []byte(`"name": "action_`)) {
				t.Fatalf("row %d is not a session start event: %s", i+1, got[i])
			}
			continue
		}
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("row %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

// TestGatewayRun serves on a real port and shuts down on cancel.
func TestGatewayRun(t *testing.T) {
	t.Chdir(t.TempDir())
	ep, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:0"
	g, err := NewGateway(context.Background(), ep, GatewayOptions{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := g.Server.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Server.Serve(ctx, ln, 5*time.Second) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/events", "application/x-ndjson", bytes.NewReader(fixtures.EventsNDJSON()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || string(bytes.TrimSpace(b)) != `{"accepted":84}` {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
