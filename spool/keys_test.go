package spool

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/idempotency"
)

func outcome(body string) idempotency.Outcome {
	return idempotency.Outcome{
		Fingerprint: idempotency.Fingerprint("POST", "/events", []byte(body)),
		Status:      202, Body: []byte(`{"accepted":3}`), Created: time.Now(),
	}
}

func appendKeyed(t *testing.T, s *Spool, key string, out idempotency.Outcome, from int) (idempotency.Outcome, bool) {
	t.Helper()
	rec, replayed, err := s.AppendIdempotent(context.Background(), key, out, seqEvents("k", from, 3)...)
	if err != nil {
		t.Fatalf("AppendIdempotent(%s): %v", key, err)
	}
	return rec, replayed
}

// A key is accepted once: a retry appends nothing and gets the first
// outcome, across a crash too (the key is in the batch's marker).
func TestIdempotentAppendOnceAcrossCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	s := openT(t, cfg, named("rec", newGate(false)))
	first := outcome("a")
	if _, replayed := appendKeyed(t, s, "k1", first, 0); replayed {
		t.Fatal("first append replayed")
	}
	retry := outcome("a")
	retry.Created = time.Now().Add(time.Second)
	rec, replayed := appendKeyed(t, s, "k1", retry, 3)
	if !replayed || !rec.Created.Equal(first.Created) || rec.Check(first.Fingerprint) != nil {
		t.Fatalf("retry: replayed %v, outcome %+v", replayed, rec)
	}
	if st := s.Status(); st.NextSeq != 3 {
		t.Fatalf("next seq %d, want 3: the retry appended", st.NextSeq)
	}
	s.crash()

	s = openT(t, cfg, named("rec", newGate(false)))
	if rec, ok := s.LookupIdempotent("k1"); !ok || rec.Status != 202 || string(rec.Body) != `{"accepted":3}` {
		t.Fatalf("after a crash: %+v, %v", rec, ok)
	}
	if _, replayed := appendKeyed(t, s, "k1", outcome("a"), 3); !replayed {
		t.Fatal("retry after a crash appended again")
	}
	if st := s.Status(); st.NextSeq != 3 {
		t.Fatalf("next seq %d, want 3", st.NextSeq)
	}
}

// One key sent by many requests at once is appended once; the others wait
// for it and replay its outcome.
func TestIdempotentConcurrentSameKey(t *testing.T) {
	s := openT(t, testConfig(t.TempDir()), named("rec", brokertest.NewRecorder()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, replayed, err := s.AppendIdempotent(context.Background(), "same", outcome("a"), seqEvents("k", 0, 3)...)
			if err != nil {
				t.Error(err)
			}
			if !replayed {
				mu.Lock()
				appended++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if appended != 1 || s.Status().NextSeq != 3 {
		t.Fatalf("%d appends, next seq %d; want 1 and 3", appended, s.Status().NextSeq)
	}
}

// Keys are forgotten after the window or past the count bound, oldest
// first; a failed append records nothing.
func TestIdempotencyWindowAndBound(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.IdempotencyWindow = time.Hour
	cfg.IdempotencyMaxKeys = 3
	s := openT(t, cfg, named("rec", brokertest.NewRecorder()))
	old := outcome("a")
	old.Created = time.Now().Add(-2 * time.Hour)
	appendKeyed(t, s, "expired", old, 0)
	if _, ok := s.LookupIdempotent("expired"); ok {
		t.Error("a key older than the window was kept")
	}
	for i, k := range []string{"k1", "k2", "k3", "k4"} {
		appendKeyed(t, s, k, outcome(k), 3+3*i)
	}
	if _, ok := s.LookupIdempotent("k1"); ok {
		t.Error("k1 kept beyond idempotency_max_keys")
	}
	for _, k := range []string{"k2", "k3", "k4"} {
		if _, ok := s.LookupIdempotent(k); !ok {
			t.Errorf("%s forgotten", k)
		}
	}
	if n := s.keys.len(); n != 3 {
		t.Errorf("%d keys held, want the bound, 3", n)
	}
	if _, _, err := s.AppendIdempotent(context.Background(), "bad key\x01", outcome("x"), seqEvents("k", 0, 1)...); err == nil {
		t.Error("invalid key accepted")
	}
	_ = closeT(t, s, time.Second)
	if _, _, err := s.AppendIdempotent(context.Background(), "k5", outcome("k5"), seqEvents("k", 0, 1)...); err == nil {
		t.Fatal("append after Close succeeded")
	}
	if _, ok := s.LookupIdempotent("k5"); ok {
		t.Error("a failed append recorded its key")
	}
}

// Retention removes delivered segments; the keys in them are saved to the
// keys file first, so a restart still replays them.
func TestIdempotencyKeysOutliveTheirSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 2 << 10
	rec := brokertest.NewRecorder()
	s := openT(t, cfg, named("rec", rec))
	appendKeyed(t, s, "early", outcome("early"), 0)
	for i := 0; i < 40; i++ {
		publishT(t, s, seqEvents("a", i, 1)...)
	}
	waitEvents(t, rec, 43)
	eventually(t, "the first segment removed", func() bool {
		_, err := os.Stat(filepath.Join(dir, segmentName(0)))
		return os.IsNotExist(err)
	})
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, keysFile)); err != nil {
		t.Fatalf("no keys file: %v", err)
	}
	s = openT(t, cfg, named("rec", rec))
	if _, replayed := appendKeyed(t, s, "early", outcome("early"), 0); !replayed {
		t.Fatal("a key of a removed segment was forgotten at restart")
	}

	// A damaged keys file loses its keys loudly, and the spool opens.
	_ = closeT(t, s, time.Second)
	data, _ := os.ReadFile(filepath.Join(dir, keysFile))
	data[len(data)/2] ^= 1
	if err := os.WriteFile(filepath.Join(dir, keysFile), data, 0o640); err != nil {
		t.Fatal(err)
	}
	logs := &logRecords{}
	s = openT(t, cfg, named("rec", rec), WithLogger(slog.New(logs)))
	if logs.count(slog.LevelError, "idempotency keys file unreadable") != 1 {
		t.Error("damaged keys file not reported")
	}
	if _, ok := s.LookupIdempotent("early"); ok {
		t.Error("key read from a damaged file")
	}
}

// A batch cut as a torn write takes its key with it: the key is on disk
// exactly when its events are, so the client's retry is accepted.
func TestIdempotencyKeyTornWithItsBatch(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	s := openT(t, cfg, named("rec", newGate(false)))
	appendKeyed(t, s, "kept", outcome("kept"), 0)
	appendKeyed(t, s, "torn", outcome("torn"), 3)
	s.crash()
	seg := segmentFiles(t, dir)[0]
	data, _ := os.ReadFile(seg)
	offs := frameOffsets(t, data)
	if err := os.WriteFile(seg, data[:len(data)-3], 0o640); err != nil { // the marker cut short
		t.Fatal(err)
	}
	rec := brokertest.NewRecorder()
	s = openT(t, cfg, named("rec", rec))
	if _, ok := s.LookupIdempotent("kept"); !ok {
		t.Error("key of an intact batch lost")
	}
	if _, ok := s.LookupIdempotent("torn"); ok {
		t.Error("key of a torn batch recovered without its events")
	}
	waitEvents(t, rec, 3)
	if st := s.Status(); st.NextSeq != 3 || len(offs) != 6 {
		t.Fatalf("next seq %d (%d records); want 3", st.NextSeq, len(offs))
	}
	if _, replayed := appendKeyed(t, s, "torn", outcome("torn"), 3); replayed {
		t.Fatal("retry of a torn batch was not accepted")
	}
}

func TestKeysFileRoundTrip(t *testing.T) {
	keys := []markedKey{{key: "a", last: 7, outcome: []byte{1, 2}}, {key: "b", last: 9}}
	got, err := decodeKeys(encodeKeys(keys))
	if err != nil || len(got) != 2 || got[0].key != "a" || got[0].last != 7 || string(got[0].outcome) != "\x01\x02" || got[1].key != "b" {
		t.Fatalf("%+v, %v", got, err)
	}
	b := encodeKeys(keys)
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x10
		if _, err := decodeKeys(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}

// A sealed segment's keys are saved beside it, and start-up reads that
// file instead of the segment; a damaged one sends it back to the segment.
func TestSegmentKeysFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 2 << 10
	s := openT(t, cfg, named("rec", newGate(false))) // nothing delivered, nothing removed
	for i := 0; i < 30; i++ {
		appendKeyed(t, s, fmt.Sprintf("k%d", i), outcome("x"), 3*i)
	}
	_ = closeT(t, s, time.Millisecond)
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	for _, seg := range segs[:len(segs)-1] {
		if _, err := os.Stat(segmentKeysPath(seg)); err != nil {
			t.Fatalf("sealed segment without keys file: %v", err)
		}
	}
	if _, err := os.Stat(segmentKeysPath(segs[len(segs)-1])); err == nil {
		t.Fatal("the active segment has a keys file")
	}
	if err := os.WriteFile(segmentKeysPath(segs[0]), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	logs := &logRecords{}
	s = openT(t, cfg, named("rec", newGate(false)), WithLogger(slog.New(logs)))
	for i := 0; i < 30; i++ {
		if _, ok := s.LookupIdempotent(fmt.Sprintf("k%d", i)); !ok {
			t.Fatalf("k%d forgotten", i)
		}
	}
	if logs.count(slog.LevelWarn, "keys file is unreadable") != 1 {
		t.Error("the damaged keys file was not reported")
	}
	// An orphan keys file (its segment removed by a crash mid-retention)
	// is cleaned up at the next start.
	orphan := filepath.Join(dir, "00000000000000999999.keys")
	if err := os.WriteFile(orphan, encodeKeys(nil), 0o640); err != nil {
		t.Fatal(err)
	}
	_ = closeT(t, s, time.Second)
	s = openT(t, cfg, named("rec", newGate(false)))
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan keys file kept: %v", err)
	}
	// The damaged one was rewritten from the segment.
	data, _ := os.ReadFile(segmentKeysPath(segs[0]))
	if keys, err := decodeKeys(data); err != nil || len(keys) == 0 {
		t.Errorf("keys file not repaired: %d keys, %v", len(keys), err)
	}
}
