package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// Every fixture event reaches the broker with Rasa's exact bytes, its ID
// and its headers.
func TestAppendDeliverRoundTrip(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			rec := brokertest.NewRecorder()
			cfg := testConfig(t.TempDir())
			cfg.Fsync = policy
			s := openT(t, cfg, named("rec", rec))
			evs := fixtureEvents(t)
			evs[2].Headers = map[string]string{"rasa-export-process-id": "42"}
			publishT(t, s, evs...)
			got := waitEvents(t, rec, len(evs))
			equalIDs(t, got, evs)
			want := fixtures.RasaBytes()
			for i, ev := range got {
				if !bytes.Equal(ev.RasaJSON(), want[i]) {
					t.Fatalf("event %d bytes\n got %s\nwant %s", i, ev.RasaJSON(), want[i])
				}
			}
			if got[2].Headers["rasa-export-process-id"] != "42" {
				t.Errorf("headers lost: %v", got[2].Headers)
			}
			if err := closeT(t, s, 5*time.Second); err != nil {
				t.Fatalf("Close: %v", err)
			}
			cur, err := ReadCursors(cfg.Dir)
			if err != nil || cur["rec"] != uint64(len(evs)) {
				t.Fatalf("persisted cursors %v, %v; want rec=%d", cur, err, len(evs))
			}
		})
	}
}

func TestPublishAssignsIDs(t *testing.T) {
	rec := brokertest.NewRecorder()
	s := openT(t, testConfig(t.TempDir()), named("rec", rec))
	evs := seqEvents("alice", 0, 3)
	evs[1].ID = ""
	evs[2].ID = ""
	last, err := s.Append(context.Background(), evs...)
	if err != nil {
		t.Fatal(err)
	}
	if last != 2 {
		t.Errorf("last seq = %d, want 2", last)
	}
	if evs[0].ID != "alice-000000" || evs[1].ID == "" || evs[2].ID == "" || evs[1].ID == evs[2].ID {
		t.Fatalf("IDs = %v", ids(evs))
	}
	equalIDs(t, waitEvents(t, rec, 3), evs)
}

// Concurrent appends share writes: while one batch is being fsynced, the
// others queue and go in the next write together.
func TestGroupCommit(t *testing.T) {
	const callers = 20
	batches := make([][]event.Event, callers)
	var total int64
	for c := range batches {
		batches[c] = seqEvents(fmt.Sprintf("s%02d", c), 0, 5)
		for _, ev := range batches[c] {
			total += int64(len(appendFrame(nil, ev, 0)))
		}
	}
	fsys := newFaultFS()
	rec := brokertest.NewRecorder()
	cfg := testConfig(t.TempDir())
	cfg.Fsync = FsyncAlways
	s := openT(t, cfg, named("rec", rec), withFS(fsys))
	var once sync.Once
	fsys.set(func(f *faultFS) {
		f.syncs = 0
		f.beforeSync = func() {
			// Hold the first batch's fsync until every caller has reserved
			// its space, i.e. is in this batch or queued for the next.
			// (No t.Fatal here: this runs on the writer goroutine.)
			once.Do(func() {
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					s.capMu.Lock()
					r := s.reserved
					s.capMu.Unlock()
					if r == total {
						return
					}
				}
			})
		}
	})

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Publish(context.Background(), batches[c]...)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	fsys.mu.Lock()
	syncs := fsys.syncs
	fsys.mu.Unlock()
	// Typically 2: the first caller alone, then everyone else.
	if syncs > 3 {
		t.Errorf("%d concurrent appends took %d fsyncs, want them grouped into at most 3", callers, syncs)
	}
	got := waitEvents(t, rec, callers*5)
	checkSenderOrder(t, got, callers*5)
}

// checkSenderOrder checks that got holds n distinct events and that each
// sender's arrive in seq order.
func checkSenderOrder(t testing.TB, got []event.Event, n int) {
	t.Helper()
	got = dedupe(got)
	if len(got) != n {
		t.Fatalf("got %d distinct events, want %d", len(got), n)
	}
	last := map[string]int64{}
	for _, ev := range got {
		v, _ := ev.Get("seq")
		f, _ := v.Float()
		seq := int64(f)
		if prev, ok := last[ev.SenderID]; ok && seq != prev+1 {
			t.Fatalf("sender %s: seq %d after %d", ev.SenderID, seq, prev)
		}
		last[ev.SenderID] = seq
	}
}

// Concurrent publishers under -race with every policy.
func TestConcurrentPublish(t *testing.T) {
	rec := brokertest.NewRecorder()
	cfg := testConfig(t.TempDir())
	cfg.SegmentSize = 16 << 10 // many rolls
	cfg.MaxSize = 1 << 30
	s := openT(t, cfg, named("rec", rec))
	const senders, per = 8, 200
	var wg sync.WaitGroup
	for c := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i += 10 {
				if err := s.Publish(context.Background(), seqEvents(fmt.Sprintf("s%d", c), i, 10)...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkSenderOrder(t, waitEvents(t, rec, senders*per), senders*per)
}

// A clean restart resumes each broker where it stopped.
func TestRestartResumesFromCursors(t *testing.T) {
	dir := t.TempDir()
	down := newGate(false)
	up := brokertest.NewRecorder()
	s := openT(t, testConfig(dir), named("up", up, "down", down))
	first := seqEvents("a", 0, 50)
	publishT(t, s, first...)
	waitEvents(t, up, 50)
	err := closeT(t, s, 20*time.Millisecond)
	if err == nil {
		t.Fatal("Close with an undelivered broker returned nil")
	}
	cur, _ := ReadCursors(dir)
	if cur["up"] != 50 || cur["down"] != 0 {
		t.Fatalf("cursors after close: %v", cur)
	}

	up2, down2 := brokertest.NewRecorder(), newGate(true)
	s = openT(t, testConfig(dir), named("up", up2, "down", down2))
	second := seqEvents("a", 50, 10)
	publishT(t, s, second...)
	equalIDs(t, waitEvents(t, down2.Recorder, 60), append(first, second...))
	equalIDs(t, waitEvents(t, up2, 10), second)
}

// After a crash (no Close) every accepted event is delivered at least
// once, in order: those after the last persisted cursor again.
func TestCrashResumes(t *testing.T) {
	dir := t.TempDir()
	rec := brokertest.NewRecorder()
	s := openT(t, testConfig(dir), named("rec", rec))
	var all []event.Event
	for i := 0; i < 500; i += 25 {
		evs := seqEvents("a", i, 25)
		publishT(t, s, evs...)
		all = append(all, evs...)
	}
	// Crash mid-delivery: some events delivered, some cursor persisted.
	eventually(t, "some delivery", func() bool { return len(rec.Events()) > 0 })
	s.crash()
	before := rec.Events()

	// The cursor on disk at the crash: read it before reopening, since the
	// new workers start delivering (and checkpointing) at once.
	saved, err := ReadCursors(dir)
	if err != nil {
		t.Fatal(err)
	}
	cur := saved["rec"]
	rec2 := brokertest.NewRecorder()
	openT(t, testConfig(dir), named("rec", rec2))
	if cur > uint64(len(before)) {
		t.Fatalf("persisted cursor %d is past the %d events delivered", cur, len(before))
	}
	after := waitEvents(t, rec2, len(all)-int(cur))
	equalIDs(t, after, all[cur:])
	equalIDs(t, dedupe(append(before, after...)), all)
}

func TestCloseDrains(t *testing.T) {
	rec := brokertest.NewRecorder()
	s := openT(t, testConfig(t.TempDir()), named("rec", rec))
	evs := seqEvents("a", 0, 300)
	publishT(t, s, evs...)
	if err := closeT(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	equalIDs(t, rec.Events(), evs)
	if err := s.Publish(context.Background(), evs[0]); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want broker.ErrClosed", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDirLocked(t *testing.T) {
	dir := t.TempDir()
	openT(t, testConfig(dir), nil)
	_, err := Open(context.Background(), testConfig(dir), nil, WithLogger(quietLog()))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestOpenRejectsDuplicateNames(t *testing.T) {
	r := brokertest.NewRecorder()
	_, err := Open(context.Background(), testConfig(t.TempDir()), named("a", r, "a", r), WithLogger(quietLog()))
	if err == nil {
		t.Fatal("duplicate broker names accepted")
	}
}

// A slow broker does not slow Publish: it returns once events are on
// disk, not once they are delivered.
func TestPublishDoesNotWaitForDelivery(t *testing.T) {
	g := newGate(false)
	s := openT(t, testConfig(t.TempDir()), named("g", g))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Publish(ctx, seqEvents("a", 0, 10)...); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Brokers[0].Pending != 10 {
		t.Fatalf("pending = %d, want 10", st.Brokers[0].Pending)
	}
	g.set(true)
	waitEvents(t, g.Recorder, 10)
}

// Crash after crash under concurrent load, with a flaky broker: every
// acknowledged event is delivered, each sender's in order.
func TestCrashLoop(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 8 << 10
	cfg.MaxBatch = 7
	var delivered []event.Event
	acked := map[string]bool{}
	const senders = 4
	next := make([]int, senders)
	for round := range 6 {
		rec := brokertest.NewRecorder()
		rec.FailNext = round % 3
		s := openT(t, cfg, named("rec", rec))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for c := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 30 {
					evs := seqEvents(fmt.Sprintf("s%d", c), next[c], 5)
					if err := s.Publish(context.Background(), evs...); err != nil {
						if !errors.Is(err, broker.ErrClosed) {
							t.Error(err)
						}
						return
					}
					mu.Lock()
					for _, ev := range evs {
						acked[ev.ID] = true
					}
					mu.Unlock()
					next[c] += 5
				}
			}()
		}
		// Crash once some events are through, mid-publishing.
		eventually(t, "some delivery", func() bool { return len(rec.Events()) >= 50 })
		s.crash()
		wg.Wait()
		delivered = append(delivered, rec.Events()...)
	}
	rec := brokertest.NewRecorder()
	s := openT(t, cfg, named("rec", rec))
	eventually(t, "delivery to the end", func() bool {
		st := s.Status()
		return st.Brokers[0].Cursor == st.NextSeq
	})
	delivered = dedupe(append(delivered, rec.Events()...))
	got := map[string]bool{}
	for _, ev := range delivered {
		got[ev.ID] = true
	}
	for id := range acked {
		if !got[id] {
			t.Fatalf("acknowledged event %s never delivered", id)
		}
	}
	if len(delivered) != len(acked) {
		t.Errorf("%d events delivered, %d acknowledged", len(delivered), len(acked))
	}
	checkSenderOrder(t, delivered, len(delivered))
}
