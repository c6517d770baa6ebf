package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker/brokertest"
)

// A spool written by parley before commit markers (format 01: no markers)
// is read as before, torn tail included, and new events go to a new
// format 02 segment; the old one is never appended to.
func TestUpgradeFromFormat01(t *testing.T) {
	dir := t.TempDir()
	evs := seqEvents("a", 0, 6)
	seg := segmentHeaderVersion(0, 1)
	for i, ev := range evs {
		at := len(seg)
		seg = appendFrame(seg, ev, time.Now().UnixNano())
		sealFrame(seg[at:], uint64(i))
	}
	last := len(seg)
	seg = append(seg, seg[segmentHeaderSize:segmentHeaderSize+20]...) // a torn record
	old := filepath.Join(dir, segmentName(0))
	if err := os.WriteFile(old, seg, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cursorsFile), []byte(`{"version":1,"cursors":{"rec":2}}`), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	g := newGate(false) // nothing delivered yet, so retention keeps the old segment
	s := openT(t, cfg, named("rec", g))
	data, _ := os.ReadFile(old)
	if len(data) != last || headerVersion(data, 0) != 1 {
		t.Fatalf("old segment: %d bytes (want %d, torn tail cut), version %d", len(data), last, headerVersion(data, 0))
	}
	more := seqEvents("b", 0, 3)
	publishT(t, s, more...)
	data, err := os.ReadFile(filepath.Join(dir, segmentName(6)))
	if err != nil || headerVersion(data, 6) != 2 {
		t.Fatalf("new segment: %v, version %d", err, headerVersion(data, 6))
	}
	g.set(true)
	equalIDs(t, waitEvents(t, g.Recorder, 7), append(evs[2:], more...))
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}

	// And it reopens, the new segment now the last.
	rec2 := brokertest.NewRecorder()
	s = openT(t, cfg, named("rec", rec2))
	publishT(t, s, seqEvents("c", 0, 1)...)
	waitEvents(t, rec2, 1)
	if st := s.Status(); st.NextSeq != 10 {
		t.Fatalf("next seq %d, want 10", st.NextSeq)
	}
}
