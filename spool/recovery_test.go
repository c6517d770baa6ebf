package spool

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// spoolWithUndelivered writes evs into a new spool whose broker never
// confirms, and closes it: the log holds them all, the cursor is at 0.
func spoolWithUndelivered(t *testing.T, cfg Config, evs []event.Event) {
	t.Helper()
	s := openT(t, cfg, named("rec", newGate(false)))
	for _, ev := range evs {
		publishT(t, s, ev) // one batch each
	}
	_ = closeT(t, s, time.Millisecond)
}

// frameOffsets returns the offset of every intact event frame of a
// segment (commit markers left out).
func frameOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	for off := segmentHeaderSize; off < len(data); {
		_, n, err := checkFrame(data[off:])
		if err != nil {
			t.Fatalf("frame at %d: %v", off, err)
		}
		if !isMarker(data[off:]) {
			offs = append(offs, off)
		}
		off += n
	}
	return offs
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// cloneDir copies the spool files of src into a new directory.
func cloneDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return dst
}

// reopenAndCollect opens dir with a recorder, waits for want events,
// checks no more arrive, and returns the spool and its recorder.
func reopenAndCollect(t *testing.T, cfg Config, want []event.Event) (*Spool, *brokertest.Recorder) {
	t.Helper()
	rec := brokertest.NewRecorder()
	s := openT(t, cfg, named("rec", rec))
	got := waitEvents(t, rec, len(want))
	// Everything committed is delivered once the cursor reaches the end.
	eventually(t, "cursor at the end", func() bool {
		st := s.Status()
		return st.Brokers[0].Cursor == st.NextSeq
	})
	equalIDs(t, rec.Events(), want)
	_ = got
	return s, rec
}

// A crash mid-write leaves the last batch (here one record and its commit
// marker) cut at any byte: it is never delivered, the ones before are, and
// the tail is cut off so new appends follow the intact records.
func TestTornTailAtEveryOffset(t *testing.T) {
	src := t.TempDir()
	cfg := testConfig(src)
	evs := seqEvents("a", 0, 6)
	spoolWithUndelivered(t, cfg, evs)
	seg := segmentFiles(t, src)[0]
	data, _ := os.ReadFile(seg)
	offs := frameOffsets(t, data)
	lastStart := offs[len(offs)-1]

	for cut := lastStart; cut < len(data); cut++ {
		dir := cloneDir(t, src)
		path := filepath.Join(dir, filepath.Base(seg))
		if err := os.Truncate(path, int64(cut)); err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Dir = dir
		s, rec := reopenAndCollect(t, c, evs[:5])
		if info, _ := os.Stat(path); info.Size() != int64(lastStart) {
			t.Fatalf("cut at %d: segment is %d bytes after recovery, want %d", cut, info.Size(), lastStart)
		}
		// The log goes on where the intact records end.
		publishT(t, s, evs[5])
		if got := waitEvents(t, rec, 6); got[5].ID != evs[5].ID {
			t.Fatalf("cut at %d: appended after recovery %s", cut, got[5].ID)
		}
		if err := closeT(t, s, time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// Damage in the last batch (a torn write whose bytes did reach the disk
// but wrong) is cut like a short one.
func TestCorruptTailBytes(t *testing.T) {
	src := t.TempDir()
	cfg := testConfig(src)
	evs := seqEvents("a", 0, 6)
	spoolWithUndelivered(t, cfg, evs)
	seg := segmentFiles(t, src)[0]
	data, _ := os.ReadFile(seg)
	offs := frameOffsets(t, data)
	lastStart := offs[len(offs)-1]

	for i := lastStart; i < len(data); i++ {
		dir := cloneDir(t, src)
		b := bytes.Clone(data)
		b[i] ^= 0x5a
		path := filepath.Join(dir, filepath.Base(seg))
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Dir = dir
		s, _ := reopenAndCollect(t, c, evs[:5])
		if got := testutil.ToFloat64(s.m.tornBytes); got != float64(len(data)-lastStart) {
			t.Fatalf("byte %d: torn bytes metric %v, want %d", i, got, len(data)-lastStart)
		}
		if err := closeT(t, s, time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// Damage before the last durable point (fsync: always, so every batch but
// the last one) loses only the damaged records: they are skipped loudly
// (log, lost_events_total) and delivery goes on.
func TestCorruptMiddle(t *testing.T) {
	evs := seqEvents("a", 0, 48) // the last segment holds a dozen
	for _, tc := range []struct {
		name string
		// segment picks the damaged file (-1: the last); damage changes it.
		segment int
		damage  func(data []byte, offs []int)
		lost    []int // indices of evs lost, within that segment
	}{
		{"flipped byte in last segment", -1, func(b []byte, offs []int) { b[offs[2]+20] ^= 1 }, []int{2}},
		{"bad length in last segment", -1, func(b []byte, offs []int) { b[offs[1]] = 0xff }, []int{1}},
		{"zeroed records in last segment", -1, func(b []byte, offs []int) { clear(b[offs[1]:offs[4]]) }, []int{1, 2, 3}},
		{"flipped byte in first segment", 0, func(b []byte, offs []int) { b[offs[1]+30] ^= 0x80 }, []int{1}},
		{"torn end of first segment", 0, func(b []byte, offs []int) { clear(b[offs[len(offs)-1]+5:]) }, []int{-1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.Fsync = FsyncAlways
			cfg.SegmentSize = 2 << 10 // about 15 events a segment
			spoolWithUndelivered(t, cfg, evs)
			segs := segmentFiles(t, dir)
			if len(segs) < 2 {
				t.Fatalf("want several segments, got %d", len(segs))
			}
			pick := tc.segment
			if pick < 0 {
				pick = len(segs) - 1
			}
			path := segs[pick]
			data, _ := os.ReadFile(path)
			offs := frameOffsets(t, data)
			// Index of the segment's first event in evs.
			base, _ := parseSegmentName(filepath.Base(path))
			lost := map[int]bool{}
			for _, i := range tc.lost {
				if i < 0 {
					i += len(offs)
				}
				lost[int(base)+i] = true
			}
			tc.damage(data, offs)
			if err := os.WriteFile(path, data, 0o640); err != nil {
				t.Fatal(err)
			}
			var want []event.Event
			for i, ev := range evs {
				if !lost[i] {
					want = append(want, ev)
				}
			}
			s, _ := reopenAndCollect(t, cfg, want)
			if got := testutil.ToFloat64(s.m.lost.WithLabelValues("rec")); got != float64(len(lost)) {
				t.Errorf("lost_events_total = %v, want %d", got, len(lost))
			}
			if info, _ := os.Stat(path); pick == len(segs)-1 && info.Size() != int64(len(data)) {
				t.Errorf("damage in the middle cut the segment from %d to %d bytes", len(data), info.Size())
			}
		})
	}
}

// A crash right after a new segment was created can leave it short of
// its header; it is repaired and used.
func TestTornSegmentHeader(t *testing.T) {
	for _, size := range []int{0, 7, 15} {
		dir := t.TempDir()
		cfg := testConfig(dir)
		evs := seqEvents("a", 0, 3)
		spoolWithUndelivered(t, cfg, evs)
		torn := filepath.Join(dir, segmentName(3))
		if err := os.WriteFile(torn, segmentHeader(3)[:size], 0o640); err != nil {
			t.Fatal(err)
		}
		s, rec := reopenAndCollect(t, cfg, evs)
		more := seqEvents("a", 3, 2)
		publishT(t, s, more...)
		equalIDs(t, waitEvents(t, rec, 5), append(evs, more...))
		if data, _ := os.ReadFile(torn); !bytes.HasPrefix(data, segmentHeader(3)) {
			t.Fatalf("header of %d bytes not repaired: %x", size, data[:min(len(data), 16)])
		}
		_ = closeT(t, s, time.Second)
	}
}

// Appends that a crash interrupted after some of a batch reached the disk
// never surface partially: a restart delivers whole records only, and
// later appends are intact.
func TestCrashDuringAppendKeepsLogConsistent(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	s := openT(t, cfg, named("rec", newGate(false)))
	evs := seqEvents("a", 0, 20)
	publishT(t, s, evs...)
	s.crash()
	// Simulate the torn second half of a batch: garbage after the records.
	seg := segmentFiles(t, dir)[0]
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	frame := appendFrame(nil, brokertest.Seq("a", 99), 1)
	sealFrame(frame, 20)
	f.Write(frame[:len(frame)/2])
	f.Close()
	s2, rec := reopenAndCollect(t, cfg, evs)
	more := seqEvents("b", 0, 3)
	publishT(t, s2, more...)
	equalIDs(t, waitEvents(t, rec, 23), append(evs, more...))
	_ = context.Background()
}

// TestReadErrorMidBatchLosesNothing: a read that fails after it has taken
// some records (here, the next segment cannot be opened) must not leave
// the reader past records the worker never got: they are delivered once
// the read succeeds.
func TestReadErrorMidBatchLosesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 64 << 10 // minimum: several segments
	g := newGate(false)
	s := openT(t, cfg, named("g", g))
	const n = 2000
	for i := 0; i < n; i += 100 {
		publishT(t, s, seqEvents("a", i, 100)...)
	}
	s.crash() // nothing delivered; the cursor stays at 0

	segs, err := listSegments(osFS{}, dir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("want at least 3 segments, got %d (%v)", len(segs), err)
	}
	fsys := newFaultFS()
	var failed bool
	fsys.set(func(f *faultFS) {
		// Open reads the segment's keys file, not the segment: the first
		// open is the delivery reader's.
		f.failReadOpen = func(name string) error {
			if name == segs[1].path && !failed {
				failed = true
				return syscall.EIO
			}
			return nil
		}
	})
	rec := brokertest.NewRecorder()
	openT(t, cfg, named("g", rec), withFS(fsys))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := rec.Wait(ctx, n)
	if !failed {
		t.Fatal("the fault was not injected")
	}
	if len(got) != n {
		t.Fatalf("delivered %d of %d events", len(got), n)
	}
	for i, ev := range got {
		if want := seqEvents("a", i, 1)[0]; string(ev.RasaJSON()) != string(want.RasaJSON()) {
			t.Fatalf("event %d: %s, want %s", i, ev.RasaJSON(), want.RasaJSON())
		}
	}
}
