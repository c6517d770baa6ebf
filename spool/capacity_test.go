package spool

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// A full spool refuses events with ErrFull and a retry-after instead of
// dropping any, and takes events again once delivery frees segments.
func TestFullSpool(t *testing.T) {
	g := newGate(false)
	cfg := testConfig(t.TempDir())
	cfg.MaxSize = 64 << 10
	s := openT(t, cfg, named("g", g))

	var accepted []event.Event
	var fullErr error
	for i := 0; fullErr == nil; i += 10 {
		if i > 10000 {
			t.Fatal("spool never filled up")
		}
		evs := seqEvents("a", i, 10)
		switch err := s.Publish(context.Background(), evs...); {
		case err == nil:
			accepted = append(accepted, evs...)
		case errors.Is(err, ErrFull):
			fullErr = err
		default:
			t.Fatal(err)
		}
	}
	if d, ok := RetryAfter(fullErr); !ok || d < time.Second {
		t.Errorf("RetryAfter(%v) = %v, %v", fullErr, d, ok)
	}
	if errors.Is(fullErr, broker.ErrPermanent) {
		t.Error("ErrFull must not be permanent: retrying later helps")
	}
	st := s.Status()
	if !st.Full || st.Bytes > cfg.MaxSize {
		t.Errorf("status: full %v, %d of %d bytes", st.Full, st.Bytes, cfg.MaxSize)
	}
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("Ready() = %v, want a full-spool error", err)
	}
	if got := testutil.ToFloat64(s.m.rejectedFull); got != 10 {
		t.Errorf("rejected_full_events_total = %v, want 10", got)
	}

	g.set(true)
	equalIDs(t, waitEvents(t, g.Recorder, len(accepted)), accepted)
	eventually(t, "space freed", func() bool { return !s.Status().Full })
	more := seqEvents("b", 0, 10)
	publishT(t, s, more...)
	equalIDs(t, waitEvents(t, g.Recorder, len(accepted)+10), append(accepted, more...))
	if err := s.Ready(); err != nil {
		t.Errorf("Ready() after recovery: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxSize = 64 << 10
	s := openT(t, cfg, nil)
	big := event.StringValue(strings.Repeat("x", 70<<10))
	ev := brokertest.Seq("a", 0).With("text", big)
	err := s.Publish(context.Background(), ev)
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, broker.ErrPermanent) {
		t.Fatalf("Publish of an event over max_size: %v, want ErrTooLarge (permanent)", err)
	}
}

// A full disk fails the append (the caller gets an error, not an
// acknowledgement), leaves no partial record behind, and loses nothing
// accepted before; the spool works again once space is back.
func TestDiskFull(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			fsys := newFaultFS()
			g := newGate(false)
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.Fsync = policy
			cfg.SegmentSize = 4 << 10
			s := openT(t, cfg, named("g", g), withFS(fsys))

			var accepted []event.Event
			next := 0
			publish := func(n int) error {
				evs := seqEvents("a", next, n)
				next += n
				err := s.Publish(context.Background(), evs...)
				if err == nil {
					accepted = append(accepted, evs...)
				}
				return err
			}
			if err := publish(10); err != nil {
				t.Fatal(err)
			}
			// Room for part of the next batch only: a partial write.
			for _, budget := range []int64{0, 1, 100, 700} {
				fsys.setBudget(budget)
				err := publish(10)
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("budget %d: Publish = %v, want ENOSPC", budget, err)
				}
				if errors.Is(err, ErrFull) {
					t.Fatalf("a full disk is not a full spool: %v", err)
				}
			}
			// Fill segments until a roll hits the full disk too.
			fsys.setBudget(-1)
			for len(segmentFiles(t, dir)) < 2 {
				if err := publish(5); err != nil {
					t.Fatal(err)
				}
			}
			fsys.setBudget(segmentHeaderSize - 1)
			for range 20 {
				if err := publish(5); err != nil {
					break
				}
			}
			fsys.setBudget(-1)
			if err := publish(10); err != nil {
				t.Fatalf("after space came back: %v", err)
			}
			if testutil.ToFloat64(s.m.appendErrors) < 5 {
				t.Errorf("append_errors_total = %v", testutil.ToFloat64(s.m.appendErrors))
			}
			g.set(true)
			equalIDs(t, waitEvents(t, g.Recorder, len(accepted)), accepted)

			// And the log on disk holds exactly the accepted events.
			eventually(t, "cursor persisted", func() bool { return s.Status().Brokers[0].Persisted == uint64(len(accepted)) })
			s.crash()
			// Every failed batch's seqs were reused by the next one, so the
			// log holds exactly the accepted events.
			rec := brokertest.NewRecorder()
			s2 := openT(t, testConfig(dir), named("g", rec))
			if st := s2.Status(); st.NextSeq != uint64(len(accepted)) || st.Brokers[0].Pending != 0 {
				t.Fatalf("after reopening: next seq %d, pending %d; want %d, 0", st.NextSeq, st.Brokers[0].Pending, len(accepted))
			}
		})
	}
}

// With fsync always, a failed fsync fails the batch and the batch is
// undone: it is never delivered, and later appends work.
func TestFsyncFailure(t *testing.T) {
	fsys := newFaultFS()
	rec := brokertest.NewRecorder()
	cfg := testConfig(t.TempDir())
	cfg.Fsync = FsyncAlways
	s := openT(t, cfg, named("rec", rec), withFS(fsys))
	ok1 := seqEvents("a", 0, 5)
	publishT(t, s, ok1...)
	fsys.set(func(f *faultFS) { f.failSync = syscall.EIO })
	if err := s.Publish(context.Background(), seqEvents("a", 5, 5)...); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Publish with failing fsync: %v, want EIO", err)
	}
	fsys.set(func(f *faultFS) { f.failSync = nil })
	ok2 := seqEvents("a", 10, 5)
	publishT(t, s, ok2...)
	equalIDs(t, waitEvents(t, rec, 10), append(ok1, ok2...))
	if err := s.Ready(); err != nil {
		t.Errorf("Ready() after a recovered fsync failure: %v", err)
	}
}

// When a failed write cannot even be undone, the spool stops accepting
// (rather than acknowledge events after an unknown tail) until a restart
// recovers the segment; what was accepted is still delivered.
func TestUnrepairableWriteStopsAppends(t *testing.T) {
	fsys := newFaultFS()
	rec := brokertest.NewRecorder()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Fsync = FsyncAlways
	s := openT(t, cfg, named("rec", rec), withFS(fsys))
	ok1 := seqEvents("a", 0, 5)
	publishT(t, s, ok1...)
	fsys.set(func(f *faultFS) { f.failSync, f.failTruncate = syscall.EIO, syscall.EIO })
	if err := s.Publish(context.Background(), seqEvents("a", 5, 5)...); err == nil {
		t.Fatal("Publish with failing disk succeeded")
	}
	fsys.set(func(f *faultFS) { f.failSync, f.failTruncate = nil, nil })
	if err := s.Publish(context.Background(), seqEvents("a", 10, 5)...); err == nil {
		t.Fatal("Publish after an unrepaired write succeeded")
	}
	if err := s.Ready(); err == nil || !errors.Is(err, syscall.EIO) {
		t.Errorf("Ready() = %v, want the disk error", err)
	}
	equalIDs(t, waitEvents(t, rec, 5), ok1)
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}

	s2 := openT(t, cfg, named("rec", rec))
	ok2 := seqEvents("b", 0, 5)
	publishT(t, s2, ok2...)
	// The unacknowledged batch may or may not be delivered; the
	// acknowledged ones are, in order.
	eventually(t, "delivery to the end", func() bool {
		st := s2.Status()
		return st.Brokers[0].Cursor == st.NextSeq
	})
	got := rec.Events()
	var acked []event.Event
	for _, ev := range got {
		if ev.SenderID == "b" || ev.ID < "a-000005" {
			acked = append(acked, ev)
		}
	}
	equalIDs(t, acked, append(ok1, ok2...))
}

// With fsync interval, a failing periodic fsync stops appends: events
// already acknowledged may not be on disk, and acknowledging more would
// hide that.
func TestIntervalFsyncFailure(t *testing.T) {
	fsys := newFaultFS()
	cfg := testConfig(t.TempDir())
	cfg.Fsync = FsyncInterval
	cfg.FsyncInterval = time.Millisecond
	s := openT(t, cfg, named("rec", brokertest.NewRecorder()), withFS(fsys))
	fsys.set(func(f *faultFS) { f.failSync = syscall.EIO })
	publishT(t, s, seqEvents("a", 0, 3)...)
	eventually(t, "the spool to stop accepting", func() bool { return s.Status().Err != nil })
	if err := s.Publish(context.Background(), seqEvents("a", 3, 1)...); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Publish after failed interval fsync: %v", err)
	}
}

func TestDiskFullKeepsFilesIntact(t *testing.T) {
	// The segment never holds bytes of a failed write.
	fsys := newFaultFS()
	dir := t.TempDir()
	s := openT(t, testConfig(dir), named("g", newGate(false)), withFS(fsys))
	publishT(t, s, seqEvents("a", 0, 3)...)
	seg := segmentFiles(t, dir)[0]
	before, _ := os.Stat(seg)
	fsys.setBudget(50)
	if err := s.Publish(context.Background(), seqEvents("a", 3, 3)...); err == nil {
		t.Fatal("write past the budget succeeded")
	}
	after, _ := os.Stat(seg)
	if after.Size() != before.Size() {
		t.Fatalf("segment grew from %d to %d bytes with a failed write", before.Size(), after.Size())
	}
}
