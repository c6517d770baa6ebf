package spool

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// The recovery findings of issue 15, each reproduced as it was found.

// S1: with events waiting for a broker that is down, a deleted cursor
// file made every broker start at the end of the log: the waiting events
// were never delivered, and nothing said so. They must be replayed from
// the oldest event, with an error logged.
func TestMissingCursorFileReplaysFromOldest(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	evs := seqEvents("a", 0, 10)
	spoolWithUndelivered(t, cfg, evs) // broker down: all 10 wait
	if err := os.Remove(filepath.Join(dir, cursorsFile)); err != nil {
		t.Fatal(err)
	}
	logs := &logRecords{}
	rec := brokertest.NewRecorder()
	s := openT(t, cfg, named("rec", rec), WithLogger(slog.New(logs)))
	equalIDs(t, waitEvents(t, rec, len(evs)), evs)
	if logs.count(slog.LevelError, "cursor file missing") != 1 {
		t.Errorf("no error logged for the missing cursor file")
	}
	_ = closeT(t, s, time.Second)

	// A new spool (no file, no events) starts quietly at the end.
	logs2 := &logRecords{}
	openT(t, testConfig(t.TempDir()), named("rec", brokertest.NewRecorder()), WithLogger(slog.New(logs2)))
	if n := logs2.count(slog.LevelWarn, "cursor"); n != 0 {
		t.Errorf("a new spool logged %d cursor warnings", n)
	}
}

// S2: a power cut while a batch is written can leave its pages on disk
// out of order: a record of the batch damaged, later ones intact. None of
// that batch was acknowledged (fsync: always acknowledges after the
// fsync), so it is a torn tail: cut whole, nothing delivered from it, and
// no corruption or lost event reported. The batches before it are kept.
func TestTornBatchOutOfOrderIsCutNotCorruption(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Fsync = FsyncAlways
	first, torn := seqEvents("a", 0, 5), seqEvents("a", 5, 5)
	s := openT(t, cfg, named("rec", newGate(false)))
	publishT(t, s, first...) // one batch
	publishT(t, s, torn...)  // the batch the power cut interrupts
	_ = closeT(t, s, time.Millisecond)

	seg := segmentFiles(t, dir)[0]
	data, _ := os.ReadFile(seg)
	offs := frameOffsets(t, data)
	if len(offs) != 10 {
		t.Fatalf("%d event records, want 10", len(offs))
	}
	// The third record of the last batch never reached the disk (zeros
	// where a page was); the records after it and the end of the file did.
	clear(data[offs[7]:offs[8]])
	if err := os.WriteFile(seg, data, 0o640); err != nil {
		t.Fatal(err)
	}

	s, rec := reopenAndCollect(t, cfg, first)
	if got := testutil.ToFloat64(s.m.lost.WithLabelValues("rec")); got != 0 {
		t.Errorf("lost_events_total = %v after a torn write, want 0 (not corruption)", got)
	}
	if got := testutil.ToFloat64(s.m.damagedBytes); got != 0 {
		t.Errorf("damaged_bytes_total = %v after a torn write, want 0", got)
	}
	if got := testutil.ToFloat64(s.m.tornBytes); got != float64(len(data)-offs[5]) {
		t.Errorf("torn_bytes_total = %v, want the whole last batch, %d", got, len(data)-offs[5])
	}
	if info, _ := os.Stat(seg); info.Size() != int64(offs[5]) {
		t.Errorf("segment is %d bytes after recovery, want %d (the end of the first batch)", info.Size(), offs[5])
	}
	// The log goes on after the first batch, with seqs the cut freed.
	more := seqEvents("b", 0, 2)
	publishT(t, s, more...)
	equalIDs(t, waitEvents(t, rec, 7), append(first, more...))
	if st := s.Status(); st.NextSeq != 7 {
		t.Errorf("next seq %d, want 7", st.NextSeq)
	}
}

// S2, the other side: damage before the last durable point is not a torn
// write, even with fsync: interval, where batches are acknowledged before
// their fsync. Batches the periodic fsync covered and that a later batch's
// marker vouches for are never cut: the damaged record is skipped and
// reported as lost (the corruption path), the intact ones after it are
// delivered.
func TestDamageBeforeDurablePointIsCorruption(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Fsync = FsyncInterval
	cfg.FsyncInterval = time.Millisecond
	fsys := newFaultFS()
	s := openT(t, cfg, named("rec", newGate(false)), withFS(fsys))
	var evs []eventBatch
	for i := 0; i < 4; i++ {
		b := seqEvents("a", 3*i, 3)
		n := fsyncCount(fsys)
		publishT(t, s, b...)
		evs = append(evs, b)
		// Let the periodic fsync cover this batch before the next one.
		eventually(t, "a periodic fsync", func() bool { return fsyncCount(fsys) > n })
	}
	s.crash()

	seg := segmentFiles(t, dir)[0]
	data, _ := os.ReadFile(seg)
	offs := frameOffsets(t, data)
	data[offs[1]+20] ^= 0x40 // inside the first batch, long fsynced
	if err := os.WriteFile(seg, data, 0o640); err != nil {
		t.Fatal(err)
	}
	var want []eventBatch
	for i, b := range evs {
		if i == 0 {
			b = append(append(eventBatch(nil), b[0]), b[2])
		}
		want = append(want, b)
	}
	s, _ = reopenAndCollect(t, cfg, flatten(want))
	if got := testutil.ToFloat64(s.m.lost.WithLabelValues("rec")); got != 1 {
		t.Errorf("lost_events_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.tornBytes); got != 0 {
		t.Errorf("torn_bytes_total = %v: acknowledged, fsynced batches were cut", got)
	}
	if info, _ := os.Stat(seg); info.Size() != int64(len(data)) {
		t.Errorf("segment cut from %d to %d bytes", len(data), info.Size())
	}
}

// Close honours its context even while the writer is stuck in an fsync
// that does not return (a hung disk): it used to wait for the writer with
// no deadline.
func TestCloseHonoursContextWhileWriterStuck(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Fsync = FsyncAlways
	fsys := newFaultFS()
	s := openT(t, cfg, named("rec", brokertest.NewRecorder()), withFS(fsys))
	stuck, release := make(chan struct{}, 1), make(chan struct{})
	fsys.set(func(f *faultFS) {
		f.beforeSync = func() {
			select {
			case stuck <- struct{}{}:
			default:
			}
			<-release
		}
	})
	published := make(chan error, 1)
	go func() { published <- s.Publish(context.Background(), seqEvents("a", 0, 1)...) }()
	<-stuck

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Close did not return while the writer was stuck in fsync")
	}
	fsys.set(func(f *faultFS) { f.beforeSync = nil })
	close(release)
	if err := <-published; err != nil {
		t.Errorf("the stuck publish failed once the disk answered: %v", err)
	}
	// The shutdown completes in the background: the directory is
	// released.
	eventually(t, "the spool directory unlocked", func() bool {
		unlock, err := lockDir(dir)
		if err != nil {
			return false
		}
		_ = unlock()
		return true
	})
}

// Status and Ready never wait for a cursor write's fsync: they used to
// take the checkpoint lock, held through it, so a slow disk made /ready
// hang.
func TestStatusDoesNotWaitForCursorFsync(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Fsync = FsyncAlways
	fsys := newFaultFS()
	rec := brokertest.NewRecorder()
	s := openT(t, cfg, named("rec", rec), withFS(fsys))
	stuck, release := make(chan struct{}, 1), make(chan struct{})
	fsys.set(func(f *faultFS) {
		f.onSync = func(name string) {
			if strings.HasPrefix(filepath.Base(name), cursorsFile) {
				select {
				case stuck <- struct{}{}:
				default:
				}
				<-release
			}
		}
	})
	defer close(release)
	publishT(t, s, seqEvents("a", 0, 3)...)
	<-stuck // the checkpoint after delivery is in its fsync

	done := make(chan Status, 1)
	go func() {
		_ = s.Ready()
		done <- s.Status()
	}()
	select {
	case st := <-done:
		if st.Brokers[0].Cursor != 3 {
			t.Errorf("cursor %d, want 3", st.Brokers[0].Cursor)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Status blocked while a cursor write was in fsync")
	}
}

type eventBatch = []event.Event

func flatten(bs []eventBatch) eventBatch {
	var out eventBatch
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func fsyncCount(f *faultFS) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}
