package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/broker/brokertest"
)

// A segment is removed only once every broker's persisted cursor passed
// it; the active segment always stays.
func TestSegmentsRemovedAfterEveryBroker(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 2 << 10
	fast, slow := brokertest.NewRecorder(), newGate(false)
	s := openT(t, cfg, named("fast", fast, "slow", slow))
	for i := 0; i < 200; i += 10 {
		publishT(t, s, seqEvents("a", i, 10)...)
	}
	segs := segmentFiles(t, dir)
	if len(segs) < 5 {
		t.Fatalf("only %d segments", len(segs))
	}
	waitEvents(t, fast, 200)
	eventually(t, "fast broker's cursor persisted", func() bool { return s.Status().Brokers[0].Persisted == 200 })
	for _, p := range segs {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("segment %s removed while the slow broker still needs it: %v", filepath.Base(p), err)
		}
	}
	bytesBefore := s.Status().Bytes

	slow.set(true)
	waitEvents(t, slow.Recorder, 200)
	// The files go first, then the byte count and the metric: wait for all.
	eventually(t, "segments removed", func() bool {
		return len(segmentFiles(t, dir)) == 1 && testutil.ToFloat64(s.m.segmentsRemoved) == float64(len(segs)-1)
	})
	left := segmentFiles(t, dir)[0]
	if left != segs[len(segs)-1] {
		t.Errorf("kept %s, want the active segment %s", left, segs[len(segs)-1])
	}
	st := s.Status()
	info, _ := os.Stat(left)
	if st.Bytes != info.Size() || st.Bytes >= bytesBefore {
		t.Errorf("bytes %d (was %d); the remaining segment has %d", st.Bytes, bytesBefore, info.Size())
	}
	if st.FirstSeq != mustBase(t, left) || st.Segments != 1 {
		t.Errorf("status after removal: %+v", st)
	}
	if got := testutil.ToFloat64(s.m.segmentsRemoved); got != float64(len(segs)-1) {
		t.Errorf("segments_removed_total = %v, want %d", got, len(segs)-1)
	}

	// Reading goes on in the kept segment and new ones.
	more := seqEvents("b", 0, 50)
	publishT(t, s, more...)
	equalIDs(t, waitEvents(t, fast, 250)[200:], more)
}

func mustBase(t *testing.T, path string) uint64 {
	t.Helper()
	b, ok := parseSegmentName(filepath.Base(path))
	if !ok {
		t.Fatalf("not a segment: %s", path)
	}
	return b
}

// With no broker at all, nothing pins the log.
func TestNoBrokersKeepsOnlyActiveSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 2 << 10
	s := openT(t, cfg, nil)
	for i := 0; i < 100; i += 10 {
		publishT(t, s, seqEvents("a", i, 10)...)
	}
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}
	s = openT(t, cfg, nil)
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments", n)
	}
	if st := s.Status(); st.NextSeq != 100 {
		t.Fatalf("next seq %d after reopening, want 100", st.NextSeq)
	}
}
