// Package trackertest is the conformance suite every tracker.Store passes:
// the same tests run against the memory store, SQLite and PostgreSQL, as
// nats-server runs one suite against its file and memory stores.
//
//	func TestConformance(t *testing.T) {
//		trackertest.Run(t, trackertest.Harness{
//			Open: func(t *testing.T) tracker.Store { return tracker.NewMemoryStore() },
//		})
//	}
package trackertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/tracker"
)

// Harness opens the store under test.
type Harness struct {
	// Open returns a new, empty store. The suite closes it.
	Open func(t *testing.T) tracker.Store
}

// Run runs every conformance test against stores from h.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tracker.Store)
	}{
		{"RetrieveUnknown", testRetrieveUnknown},
		{"AppendRetrieve", testAppendRetrieve},
		{"BytesKept", testBytesKept},
		{"Replace", testReplace},
		{"Keys", testKeys},
		{"UpdateSeesCurrent", testUpdateSeesCurrent},
		{"UpdateErrorWritesNothing", testUpdateError},
		{"UpdateSerializedPerConversation", testSerialized},
		{"UpdateParallelAcrossConversations", testParallel},
		{"UpdateWaitHonoursContext", testLockContext},
		{"ScanOrder", testScanOrder},
		{"ScanFilters", testScanFilters},
		{"ScanStopsOnError", testScanStops},
		{"ScanWithoutTimestamp", testScanNoTimestamp},
		{"IdempotencyRecord", testRecord},
		{"IdempotencyRecordWithoutEvents", testRecordAlone},
		{"IdempotencyRecordRolledBack", testRecordRolledBack},
		{"Ping", testPing},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.Open(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

// Event makes an event body of type typ at ts with extra JSON members
// (`"name": "x"` pairs, without braces).
func Event(t testing.TB, ts float64, typ string, extra string) event.Event {
	t.Helper()
	js := `{"event": ` + strconv.Quote(typ) + `, "timestamp": ` + strconv.FormatFloat(ts, 'g', -1, 64)
	if extra != "" {
		js += ", " + extra
	}
	ev, err := event.Parse([]byte(js + "}"))
	if err != nil {
		t.Fatalf("bad test event %s: %v", js, err)
	}
	return ev
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func bodies(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Body().AppendJSON(nil, event.FormatRasa))
	}
	return out
}

func mustRetrieve(t *testing.T, s tracker.Store, id string) []event.Event {
	t.Helper()
	evs, err := s.Retrieve(ctxT(t), id)
	if err != nil {
		t.Fatalf("Retrieve(%q): %v", id, err)
	}
	for _, ev := range evs {
		if ev.SenderID != id {
			t.Errorf("Retrieve(%q): event with SenderID %q", id, ev.SenderID)
		}
	}
	return evs
}

func equalBodies(t *testing.T, what string, got, want []event.Event) {
	t.Helper()
	g, w := bodies(got), bodies(want)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s:\n got %d events:\n  %s\nwant %d events:\n  %s", what, len(g), strings.Join(g, "\n  "), len(w), strings.Join(w, "\n  "))
	}
}

func testRetrieveUnknown(t *testing.T, s tracker.Store) {
	evs, err := s.Retrieve(ctxT(t), "nobody")
	if err != nil || evs != nil {
		t.Fatalf("Retrieve(unknown) = %v, %v; want nil, nil", evs, err)
	}
	keys, err := s.Keys(ctxT(t))
	if err != nil || len(keys) != 0 {
		t.Fatalf("Keys() on an empty store = %v, %v", keys, err)
	}
}

func testAppendRetrieve(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	first := []event.Event{
		Event(t, 3, "action", `"name": "action_listen"`),
		Event(t, 1, "user", `"text": "hi", "parse_data": {"intent": {"name": "greet"}}`),
		Event(t, 2, "slot", `"name": "city", "value": "Berlin"`),
	}
	// SenderID and ID of the input are not what is stored.
	first[0].SenderID, first[0].ID = "someone-else", "id-1"
	if err := tracker.Append(ctx, s, "c1", first...); err != nil {
		t.Fatal(err)
	}
	more := []event.Event{Event(t, 4, "bot", `"text": "hey"`), Event(t, 5, "pause", "")}
	if err := tracker.Append(ctx, s, "c1", more...); err != nil {
		t.Fatal(err)
	}
	got := mustRetrieve(t, s, "c1")
	// Stored order, not timestamp order.
	equalBodies(t, "Retrieve", got, append(append([]event.Event(nil), first...), more...))
	for _, ev := range got {
		if ev.ID != "" {
			t.Errorf("retrieved event has ID %q; stores do not keep IDs", ev.ID)
		}
	}
	if err := tracker.Append(ctx, s, "c1"); err != nil {
		t.Fatalf("appending nothing: %v", err)
	}
	if n := len(mustRetrieve(t, s, "c1")); n != 5 {
		t.Fatalf("after appending nothing: %d events", n)
	}
	if err := tracker.Append(ctx, s, "", first[0]); !errors.Is(err, tracker.ErrInvalidID) {
		t.Errorf("Append to empty id: %v, want ErrInvalidID", err)
	}
}

func testBytesKept(t *testing.T, s tracker.Store) {
	lines := []string{
		`{"event":"user","timestamp":1700000004.623456,"metadata":{"z":1,"a":2},"text":"Grüße aus Köln — 你好 😀","parse_data":{"intent":{"name":"greet","confidence":0.9987},"entities":[],"zz":[1,2.0,1e-07,1e+22,123456789012345678901234567890]},"input_channel":"rest","message_id":"b7c1d2"}`,
		`{"event":"bot","timestamp":1.0,"text":"quote \" backslash \\ tab \t newline \n ctrl \u0001 slash /","data":{"custom":null}}`,
		`{"timestamp":2,"event":"slot","name":"x","value":{"nested":{"b":[true,false,null],"a":-0.0}},"unknown_field":"kept"}`,
	}
	var evs []event.Event
	for _, l := range lines {
		ev, err := event.Parse([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if err := tracker.Append(ctxT(t), s, "bytes", evs...); err != nil {
		t.Fatal(err)
	}
	got := mustRetrieve(t, s, "bytes")
	equalBodies(t, "stored bodies", got, evs)
	for i := range got {
		got[i].SenderID = "bytes"
		evs[i].SenderID = "bytes"
		if !bytes.Equal(got[i].RasaJSON(), evs[i].RasaJSON()) {
			t.Errorf("event %d Rasa bytes changed:\n got %s\nwant %s", i, got[i].RasaJSON(), evs[i].RasaJSON())
		}
	}
}

func testReplace(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	old := []event.Event{Event(t, 1, "pause", ""), Event(t, 2, "resume", ""), Event(t, 3, "pause", "")}
	if err := tracker.Append(ctx, s, "c1", old...); err != nil {
		t.Fatal(err)
	}
	if err := tracker.Append(ctx, s, "other", old[0]); err != nil {
		t.Fatal(err)
	}
	repl := []event.Event{Event(t, 10, "slot", `"name": "a", "value": 1`)}
	if err := tracker.Replace(ctx, s, "c1", repl); err != nil {
		t.Fatal(err)
	}
	equalBodies(t, "after Replace", mustRetrieve(t, s, "c1"), repl)
	equalBodies(t, "other conversation after Replace", mustRetrieve(t, s, "other"), old[:1])
	if err := tracker.Replace(ctx, s, "c1", nil); err != nil {
		t.Fatal(err)
	}
	if evs := mustRetrieve(t, s, "c1"); evs != nil {
		t.Fatalf("after Replace with nothing: %d events", len(evs))
	}
	keys, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "other" {
		t.Fatalf("Keys after deleting c1 = %q", keys)
	}
}

func testKeys(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	ids := []string{"b", "a/b/c", "ünï cödé 😀", "with space", strings.Repeat("x", 255), "a"}
	for i, id := range ids {
		if err := tracker.Append(ctx, s, id, Event(t, float64(i), "pause", ""), Event(t, float64(i)+0.5, "resume", "")); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
	}
	keys, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), ids...)
	sortStrings(want)
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Keys = %q, want %q", keys, want)
	}
	for _, id := range ids {
		if n := len(mustRetrieve(t, s, id)); n != 2 {
			t.Errorf("Retrieve(%q): %d events, want 2", id, n)
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func testUpdateSeesCurrent(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	calls := 0
	err := s.Update(ctx, "c1", func(cur []event.Event) (tracker.Change, error) {
		calls++
		if cur != nil {
			t.Errorf("new conversation: fn got %d events", len(cur))
		}
		return tracker.Change{Events: []event.Event{Event(t, 1, "pause", "")}}, nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("Update: %v (fn called %d times)", err, calls)
	}
	err = s.Update(ctx, "c1", func(cur []event.Event) (tracker.Change, error) {
		if len(cur) != 1 || cur[0].Type() != "pause" || cur[0].SenderID != "c1" {
			t.Errorf("fn got %v", bodies(cur))
		}
		return tracker.Change{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testUpdateError(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	if err := tracker.Append(ctx, s, "c1", Event(t, 1, "pause", "")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for _, replace := range []bool{false, true} {
		err := s.Update(ctx, "c1", func([]event.Event) (tracker.Change, error) {
			return tracker.Change{Replace: replace, Events: []event.Event{Event(t, 2, "resume", "")}}, boom
		})
		if err != boom {
			t.Fatalf("Update returned %v, want fn's error itself", err)
		}
	}
	if n := len(mustRetrieve(t, s, "c1")); n != 1 {
		t.Fatalf("a failed update wrote: %d events", n)
	}
}

// testSerialized runs read-modify-write updates of one conversation from
// many goroutines: each appends an event numbered by the count it saw, so
// any overlap shows as a repeated or missing number.
func testSerialized(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Update(ctx, "busy", func(cur []event.Event) (tracker.Change, error) {
				seq := len(cur)
				return tracker.Change{Events: []event.Event{Event(t, float64(seq), "slot", `"name": "seq", "value": `+strconv.Itoa(seq))}}, nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	evs := mustRetrieve(t, s, "busy")
	if len(evs) != n {
		t.Fatalf("%d events after %d updates", len(evs), n)
	}
	for i, ev := range evs {
		v, _ := ev.Get("value")
		if v.NumberText() != strconv.Itoa(i) {
			t.Fatalf("event %d has seq %s: updates overlapped", i, v.NumberText())
		}
	}
}

// testParallel holds one conversation's update open and requires another
// conversation's update to finish meanwhile.
func testParallel(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the store closes, even when the test fails
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, "slow", func([]event.Event) (tracker.Change, error) {
			close(entered)
			<-release
			return tracker.Change{Events: []event.Event{Event(t, 1, "pause", "")}}, nil
		})
	}()
	<-entered
	other := make(chan error, 1)
	go func() { other <- tracker.Append(ctx, s, "fast", Event(t, 2, "pause", "")) }()
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an update of another conversation waited for the first one")
	}
	if evs := mustRetrieve(t, s, "fast"); len(evs) != 1 {
		t.Errorf("fast: %d events", len(evs))
	}
	free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func testLockContext(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, "held", func([]event.Event) (tracker.Change, error) {
			close(entered)
			<-release
			return tracker.Change{}, nil
		})
	}()
	<-entered
	waitCtx, cancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	var called atomic.Bool
	go func() {
		waited <- s.Update(waitCtx, "held", func([]event.Event) (tracker.Change, error) {
			called.Store(true)
			return tracker.Change{}, nil
		})
	}()
	cancel()
	select {
	case err := <-waited:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Update with a cancelled context = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Update kept waiting for the lock after its context ended")
	}
	free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if called.Load() {
		t.Error("fn ran although the context had ended")
	}
}

type stamped struct {
	id string
	ts float64
	n  int
}

// scanFixture stores events of three conversations with interleaved and
// equal timestamps; n numbers them in storing order.
func scanFixture(t *testing.T, s tracker.Store) []stamped {
	ctx := ctxT(t)
	plan := []stamped{
		{"b", 5, 0}, {"b", 1, 1}, {"a", 3, 2}, {"c", 3, 3}, {"a", 3, 4},
		{"c", 0.5, 5}, {"b", 7.25, 6}, {"a", 10, 7}, {"c", 3, 8},
	}
	for _, p := range plan {
		if err := tracker.Append(ctx, s, p.id, Event(t, p.ts, "slot", fmt.Sprintf(`"name": "n", "value": %d`, p.n))); err != nil {
			t.Fatal(err)
		}
	}
	return plan
}

func scanAll(t *testing.T, s tracker.Store, q tracker.Query) []stamped {
	t.Helper()
	var out []stamped
	err := s.Scan(ctxT(t), q, func(ev event.Event) error {
		ts, _ := ev.Timestamp()
		v, _ := ev.Get("value")
		n, _ := strconv.Atoi(v.NumberText())
		out = append(out, stamped{ev.SenderID, ts, n})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Count(ctxT(t), q)
	if err != nil {
		t.Fatal(err)
	}
	if int(c) != len(out) {
		t.Errorf("Count = %d, Scan visited %d", c, len(out))
	}
	return out
}

func order(st []stamped) string {
	var b strings.Builder
	for _, s := range st {
		fmt.Fprintf(&b, "%d ", s.n)
	}
	return strings.TrimSpace(b.String())
}

func testScanOrder(t *testing.T, s tracker.Store) {
	scanFixture(t, s)
	// Timestamp order across conversations; ties (ts 3) in storing order.
	if got, want := order(scanAll(t, s, tracker.Query{})), "5 1 2 3 4 8 0 6 7"; got != want {
		t.Fatalf("Scan order = %s, want %s", got, want)
	}
}

func testScanFilters(t *testing.T, s tracker.Store) {
	scanFixture(t, s)
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		q    tracker.Query
		want string
	}{
		{"min inclusive", tracker.Query{MinTimestamp: f(3)}, "2 3 4 8 0 6 7"},
		{"max exclusive", tracker.Query{MaxTimestamp: f(3)}, "5 1"},
		{"range", tracker.Query{MinTimestamp: f(1), MaxTimestamp: f(7.25)}, "1 2 3 4 8 0"},
		{"empty range", tracker.Query{MinTimestamp: f(4), MaxTimestamp: f(4)}, ""},
		{"senders", tracker.Query{SenderIDs: []string{"a", "c"}}, "5 2 3 4 8 7"},
		{"unknown sender", tracker.Query{SenderIDs: []string{"zzz"}}, ""},
		{"no senders", tracker.Query{SenderIDs: []string{}}, ""},
		{"senders and range", tracker.Query{SenderIDs: []string{"b"}, MinTimestamp: f(2), MaxTimestamp: f(100)}, "0 6"},
	}
	for _, tt := range tests {
		if got := order(scanAll(t, s, tt.q)); got != tt.want {
			t.Errorf("%s: Scan = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func testScanStops(t *testing.T, s tracker.Store) {
	scanFixture(t, s)
	stop := errors.New("stop")
	n := 0
	err := s.Scan(ctxT(t), tracker.Query{}, func(event.Event) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("Scan returned %v after %d calls; want fn's error after 3", err, n)
	}
	// The store still works after an interrupted scan.
	if _, err := s.Retrieve(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
}

func testClosed(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	if err := tracker.Append(ctx, s, "c1", Event(t, 1, "pause", "")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Retrieve(ctx, "c1"); !errors.Is(err, tracker.ErrClosed) {
		t.Errorf("Retrieve after Close: %v", err)
	}
	if err := tracker.Append(ctx, s, "c1", Event(t, 2, "pause", "")); !errors.Is(err, tracker.ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := s.Keys(ctx); !errors.Is(err, tracker.ErrClosed) {
		t.Errorf("Keys after Close: %v", err)
	}
	if err := s.Scan(ctx, tracker.Query{}, func(event.Event) error { return nil }); !errors.Is(err, tracker.ErrClosed) {
		t.Errorf("Scan after Close: %v", err)
	}
}

// testScanNoTimestamp: an event without a timestamp (which the API never
// stores, but a database might hold) sorts first and fails any bound.
func testScanNoTimestamp(t *testing.T, s tracker.Store) {
	scanFixture(t, s)
	ev, err := event.Parse([]byte(`{"event": "slot", "name": "n", "value": 99}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := tracker.Append(ctxT(t), s, "z", ev); err != nil {
		t.Fatal(err)
	}
	if got := order(scanAll(t, s, tracker.Query{})); got != "99 5 1 2 3 4 8 0 6 7" {
		t.Errorf("Scan = %s, want the event without timestamp first", got)
	}
	f := func(v float64) *float64 { return &v }
	if got := order(scanAll(t, s, tracker.Query{MaxTimestamp: f(3)})); got != "5 1" {
		t.Errorf("Scan below 3 = %s", got)
	}
	if got := order(scanAll(t, s, tracker.Query{MinTimestamp: f(-1e300)})); strings.HasPrefix(got, "99") {
		t.Errorf("Scan from -1e300 = %s", got)
	}
}

func testPing(t *testing.T, s tracker.Store) {
	if err := tracker.Ping(ctxT(t), s); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func outcome(body string, created time.Time) idempotency.Outcome {
	return idempotency.Outcome{
		Fingerprint: idempotency.Fingerprint("POST", "/p", []byte(body)),
		Status:      200, Body: []byte(body), Created: created,
	}
}

// testRecord: a record written with events is read back whole, for its
// conversation and key only; an expired one is gone.
func testRecord(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	o := outcome(`{"ok": 1}`, time.Now())
	err := s.Update(ctx, "c1", func([]event.Event) (tracker.Change, error) {
		return tracker.Change{Events: []event.Event{Event(t, 1, "pause", "")}, Record: &tracker.Record{Key: "k1", Outcome: o}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Recorded(ctx, "c1", "k1")
	if err != nil || !ok {
		t.Fatalf("Recorded = %v, %v", ok, err)
	}
	// UpdateKeyed hands the record to its function, for that key only.
	for key, want := range map[string]bool{"k1": true, "k2": false, "": false} {
		err := s.UpdateKeyed(ctx, "c1", key, func(cur []event.Event, rec *idempotency.Outcome) (tracker.Change, error) {
			if (rec != nil) != want || (rec != nil && string(rec.Body) != `{"ok": 1}`) || len(cur) != 1 {
				t.Errorf("UpdateKeyed(%q): record %v, %d events", key, rec, len(cur))
			}
			return tracker.Change{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got.Fingerprint != o.Fingerprint || got.Status != 200 || string(got.Body) != `{"ok": 1}` || !got.Created.Equal(o.Created) {
		t.Fatalf("Recorded = %+v, want %+v", got, o)
	}
	for _, q := range [][2]string{{"c1", "k2"}, {"c2", "k1"}} {
		if _, ok, err := s.Recorded(ctx, q[0], q[1]); ok || err != nil {
			t.Errorf("Recorded(%q, %q) = %v, %v; want nothing", q[0], q[1], ok, err)
		}
	}
	old := outcome(`{"old": 1}`, time.Now().Add(-tracker.RecordWindow-time.Minute))
	err = s.Update(ctx, "c1", func([]event.Event) (tracker.Change, error) {
		return tracker.Change{Record: &tracker.Record{Key: "k-old", Outcome: old}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Recorded(ctx, "c1", "k-old"); ok || err != nil {
		t.Errorf("an expired record is still returned (%v, %v)", ok, err)
	}
	// A later record of an expired key replaces it.
	err = s.Update(ctx, "c1", func([]event.Event) (tracker.Change, error) {
		return tracker.Change{Record: &tracker.Record{Key: "k-old", Outcome: o}}, nil
	})
	if _, ok, _ := s.Recorded(ctx, "c1", "k-old"); err != nil || !ok {
		t.Errorf("re-recording an expired key: %v, found %v", err, ok)
	}
	equalBodies(t, "events", mustRetrieve(t, s, "c1"), []event.Event{Event(t, 1, "pause", "")})
}

// testRecordAlone: a change with a record and no events (a retry that
// added nothing new) still records.
func testRecordAlone(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	err := s.Update(ctx, "c1", func([]event.Event) (tracker.Change, error) {
		return tracker.Change{Record: &tracker.Record{Key: "k", Outcome: outcome("{}", time.Now())}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Recorded(ctx, "c1", "k"); !ok || err != nil {
		t.Fatalf("Recorded = %v, %v", ok, err)
	}
	if evs := mustRetrieve(t, s, "c1"); len(evs) != 0 {
		t.Fatalf("events written: %v", bodies(evs))
	}
}

// testRecordRolledBack: when the UpdateFunc fails nothing is recorded.
func testRecordRolledBack(t *testing.T, s tracker.Store) {
	ctx := ctxT(t)
	boom := errors.New("boom")
	err := s.Update(ctx, "c1", func([]event.Event) (tracker.Change, error) {
		return tracker.Change{Record: &tracker.Record{Key: "k", Outcome: outcome("{}", time.Now())}}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if _, ok, err := s.Recorded(ctx, "c1", "k"); ok || err != nil {
		t.Fatalf("Recorded after a failed update = %v, %v", ok, err)
	}
}
