package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// A broker failing now and then gets every sender's events in order,
// each once (the recorder keeps nothing of a failed call).
func TestPerSenderOrderWithFlakyBroker(t *testing.T) {
	for _, failures := range []int{1, 7} {
		t.Run(fmt.Sprint(failures, " failures"), func(t *testing.T) {
			rec := brokertest.NewRecorder()
			rec.FailNext = failures // set before any Publish: the field is not guarded
			cfg := testConfig(t.TempDir())
			cfg.MaxBatch = 16
			s := openT(t, cfg, named("flaky", rec))
			const senders, per = 5, 120
			var wg sync.WaitGroup
			for c := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i += 4 {
						if err := s.Publish(context.Background(), seqEvents(fmt.Sprintf("u%d", c), i, 4)...); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			got := waitEvents(t, rec, senders*per)
			if len(dedupe(got)) != len(got) {
				t.Errorf("duplicates delivered although failed calls published nothing")
			}
			checkSenderOrder(t, got, senders*per)
			if n := testutil.ToFloat64(s.m.publishFailures.WithLabelValues("flaky")); n != float64(failures) {
				t.Errorf("publish_failures_total = %v, want %d", n, failures)
			}
			if n := testutil.ToFloat64(s.m.redelivered.WithLabelValues("flaky")); n == 0 {
				t.Error("redelivered_events_total = 0 after retries")
			}
		})
	}
}

// rejecter fails a whole batch permanently if it holds a poisoned event,
// as an atomic broker would, and records the batches it accepts.
type rejecter struct {
	*brokertest.Recorder
	bad map[string]bool
}

func (r *rejecter) Publish(ctx context.Context, evs ...event.Event) error {
	for _, ev := range evs {
		if r.bad[ev.ID] {
			return broker.Permanent(fmt.Errorf("event %s: message too large", ev.ID))
		}
	}
	return r.Recorder.Publish(ctx, evs...)
}

// Events a broker rejects permanently go to its dead-letter file, with
// the error; the rest of their batch and everything after is delivered
// in order.
func TestPermanentFailureDeadLetters(t *testing.T) {
	evs := seqEvents("a", 0, 100)
	evs[3].Headers = map[string]string{"h": "v"}
	bad := map[string]bool{evs[3].ID: true, evs[4].ID: true, evs[77].ID: true}
	r := &rejecter{Recorder: brokertest.NewRecorder(), bad: bad}
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBatch = 32
	s := openT(t, cfg, named("kafka#2", r))
	publishT(t, s, evs...)

	var want []event.Event
	for _, ev := range evs {
		if !bad[ev.ID] {
			want = append(want, ev)
		}
	}
	eventually(t, "delivery to the end", func() bool { return s.Status().Brokers[0].Cursor == 100 })
	equalIDs(t, dedupe(r.Events()), want)

	path := DeadLetterPath(dir, "kafka#2")
	if filepathBase := path[len(dir):]; filepathBase != "/deadletter/kafka#2.ndjson" {
		t.Errorf("dead-letter path %s", path)
	}
	dls, err := ReadDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3: %+v", len(dls), dls)
	}
	for i, idx := range []int{3, 4, 77} {
		d := dls[i]
		if d.EventID != evs[idx].ID || d.Seq != uint64(idx) || d.SenderID != "a" || d.Broker != "kafka#2" ||
			!strings.Contains(d.Error, "too large") || string(d.Event) != string(evs[idx].RasaJSON()) {
			t.Errorf("dead letter %d: %+v", i, d)
		}
	}
	if dls[0].Headers["h"] != "v" {
		t.Errorf("headers not kept: %v", dls[0].Headers)
	}
	if n := testutil.ToFloat64(s.m.deadLetters.WithLabelValues("kafka#2")); n != 3 {
		t.Errorf("dead_letters_total = %v", n)
	}
	if st := s.Status().Brokers[0]; st.Failing {
		t.Errorf("permanent rejections mark the broker failing: %+v", st)
	}
}

// A partial line left by a crash in the dead-letter file is dropped
// before the next entry, so every line stays valid JSON.
func TestDeadLetterFileRepairsPartialLine(t *testing.T) {
	dir := t.TempDir()
	path := DeadLetterPath(dir, "r")
	if err := os.MkdirAll(dir+"/deadletter", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"event_id":"old"}`+"\n"+`{"event_id":"torn`), 0o640); err != nil {
		t.Fatal(err)
	}
	evs := seqEvents("a", 0, 2)
	r := &rejecter{Recorder: brokertest.NewRecorder(), bad: map[string]bool{evs[1].ID: true}}
	s := openT(t, testConfig(dir), named("r", r))
	publishT(t, s, evs...)
	eventually(t, "delivery to the end", func() bool { return s.Status().Brokers[0].Cursor == 2 })
	dls, err := ReadDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 2 || dls[0].EventID != "old" || dls[1].EventID != evs[1].ID {
		t.Fatalf("dead letters %+v", dls)
	}
}

// A broker added since the last run starts at the end of the log: it
// gets the events accepted from then on, not the backlog.
func TestNewBrokerStartsAtEnd(t *testing.T) {
	dir := t.TempDir()
	a := brokertest.NewRecorder()
	s := openT(t, testConfig(dir), named("a", a))
	first := seqEvents("x", 0, 10)
	publishT(t, s, first...)
	waitEvents(t, a, 10)
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}

	a2, b := brokertest.NewRecorder(), brokertest.NewRecorder()
	s = openT(t, testConfig(dir), named("a", a2, "b", b))
	if st := s.Status(); st.Brokers[1].Cursor != 10 {
		t.Fatalf("new broker starts at %d, want 10 (the end)", st.Brokers[1].Cursor)
	}
	cur, _ := ReadCursors(dir)
	if c, ok := cur["b"]; !ok || c != 10 {
		t.Fatalf("new broker's start not persisted: %v", cur)
	}
	second := seqEvents("x", 10, 5)
	publishT(t, s, second...)
	equalIDs(t, waitEvents(t, b, 5), second)
	equalIDs(t, waitEvents(t, a2, 5), second)
}

// The cursor of a broker no longer configured is dropped, so it stops
// pinning segments.
func TestRemovedBrokerCursorDropped(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 2 << 10
	a, gone := brokertest.NewRecorder(), newGate(false)
	s := openT(t, cfg, named("a", a, "gone", gone))
	for i := 0; i < 100; i += 10 {
		publishT(t, s, seqEvents("x", i, 10)...)
	}
	waitEvents(t, a, 100)
	eventually(t, "a's cursor persisted", func() bool { return s.Status().Brokers[0].Persisted == 100 })
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments: the stuck broker should pin them", n)
	}
	_ = closeT(t, s, time.Millisecond)

	s = openT(t, cfg, named("a", brokertest.NewRecorder()))
	cur, _ := ReadCursors(dir)
	if _, ok := cur["gone"]; ok || cur["a"] != 100 {
		t.Fatalf("cursors after removing a broker: %v", cur)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Errorf("%d segments left; those only the removed broker needed should go", n)
	}
	if st := s.Status(); st.Segments != 1 || st.Bytes <= 0 {
		t.Errorf("status %+v", st)
	}
}

// Ready fails once a broker has failed for longer than the threshold,
// naming it and its error, and recovers with the broker.
func TestReadyFailureThreshold(t *testing.T) {
	g := newGate(false)
	cfg := testConfig(t.TempDir())
	cfg.ReadyFailureThreshold = 20 * time.Millisecond
	s := openT(t, cfg, named("rabbit", g, "ok", brokertest.NewRecorder()))
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready() before any failure: %v", err)
	}
	publishT(t, s, seqEvents("a", 0, 3)...)
	eventually(t, "not ready", func() bool { return s.Ready() != nil })
	err := s.Ready()
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "rabbit") || !strings.Contains(err.Error(), errGateClosed.Error()) {
		t.Fatalf("Ready() = %v", err)
	}
	st := s.Status().Brokers[0]
	if !st.Failing || st.FailingSince.IsZero() || st.Attempts == 0 || st.LastError != errGateClosed.Error() || st.Pending != 3 {
		t.Errorf("status of the failing broker: %+v", st)
	}
	if d, ok := RetryAfter(&FullError{RetryAfter: s.retryAfter()}); !ok || d < time.Second {
		t.Errorf("retry-after %v", d)
	}
	g.set(true)
	waitEvents(t, g.Recorder, 3)
	eventually(t, "ready again", func() bool { return s.Ready() == nil })
	if st := s.Status().Brokers[0]; st.Failing || st.LastError == "" {
		t.Errorf("after recovery: %+v (the last error is kept for inspection)", st)
	}
}

// Close gives up waiting for a broker that stays down at the context's
// deadline; the events stay for the next start.
func TestCloseDeadlineKeepsEvents(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, testConfig(dir), named("down", newGate(false)))
	evs := seqEvents("a", 0, 7)
	publishT(t, s, evs...)
	err := closeT(t, s, 30*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "7 events not yet delivered to down") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v", err)
	}
	rec := brokertest.NewRecorder()
	openT(t, testConfig(dir), named("down", rec))
	equalIDs(t, waitEvents(t, rec, 7), evs)
}
