package tracker_test

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/tracker"
)

// BenchmarkNewTracker derives the state of the 28-event fixture
// conversation (undo, rewind and restart included).
func BenchmarkNewTracker(b *testing.B) {
	var evs []event.Event
	for _, l := range fixtures.Events()[:28] {
		ev, _ := event.Parse(l)
		evs = append(evs, ev)
	}
	b.ReportAllocs()
	for b.Loop() {
		t := tracker.NewTracker("default", evs)
		_ = t.AppendStateJSON(nil, tracker.VerbosityAfterRestart)
	}
}

// BenchmarkPost posts one new event at a time, round robin to 100
// conversations that start with 50 events, through the handler, on each
// store (the recorder stands in for the spool).
func BenchmarkPost(b *testing.B) {
	for _, k := range []struct {
		name string
		open func(b *testing.B) tracker.Store
	}{
		{"memory", func(*testing.B) tracker.Store { return tracker.NewMemoryStore() }},
		{"sqlite", func(b *testing.B) tracker.Store {
			c := tracker.Config{Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(b.TempDir(), "rasa.db")}, Table: "events"}
			s, err := tracker.OpenSQL(b.Context(), c, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
	} {
		b.Run(k.name, func(b *testing.B) {
			s := k.open(b)
			h, err := tracker.NewHandler(tracker.HandlerOptions{Store: s, Publisher: brokertest.NewRecorder()})
			if err != nil {
				b.Fatal(err)
			}
			post := func(id, body string) {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("POST", "/conversations/"+id+"/tracker/events?include_events=NONE", strings.NewReader(body)))
				if w.Code != 200 {
					b.Fatalf("POST = %d %s", w.Code, w.Body)
				}
			}
			var seed []string
			for i := 0; i < 50; i++ {
				seed = append(seed, fmt.Sprintf(`{"event": "slot", "timestamp": %d, "name": "s", "value": %d}`, i, i))
			}
			for c := 0; c < 100; c++ {
				post(fmt.Sprintf("c%d", c), "["+strings.Join(seed, ",")+"]")
			}
			i := 50
			b.ReportAllocs()
			for b.Loop() {
				i++
				post(fmt.Sprintf("c%d", i%100), fmt.Sprintf(`{"event": "slot", "timestamp": %d, "name": "s", "value": %d}`, i, i))
			}
		})
	}
}
