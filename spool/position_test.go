package spool

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// A crash after delivery, with the cursor file behind (it is persisted
// every 200ms), redelivers nothing to a positioned broker: the worker
// resumes from the position the destination recorded.
func TestResumeFromDestinationPosition(t *testing.T) {
	dir := t.TempDir()
	rec := brokertest.NewPositionedRecorder()
	s := openT(t, testConfig(dir), named("exact", rec))
	publishT(t, s, seqEvents("a", 0, 100)...)
	waitEvents(t, rec.Recorder, 100)
	id := s.streamID("exact")
	if p := rec.Position(id); p != 100 {
		t.Fatalf("destination position %d, want 100", p)
	}
	s.crash()
	// The cursor file as a crash right after delivery leaves it.
	if err := writeCursorFile(osFS{}, dir, map[string]uint64{"exact": 0}, false); err != nil {
		t.Fatal(err)
	}

	s = openT(t, testConfig(dir), named("exact", rec))
	if s.streamID("exact") != id {
		t.Fatalf("stream id changed across restarts: %q then %q", id, s.streamID("exact"))
	}
	publishT(t, s, seqEvents("a", 100, 10)...)
	got := waitEvents(t, rec.Recorder, 110)
	if err := closeT(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got = rec.Events(); len(got) != 110 || len(dedupe(got)) != 110 {
		t.Fatalf("%d events delivered (%d distinct), want 110 once each", len(got), len(dedupe(got)))
	}
	checkSenderOrder(t, got, 110)
	if c, _ := ReadCursors(dir); c["exact"] != 110 {
		t.Fatalf("cursor %d after close, want 110", c["exact"])
	}
}

// A write that commits but reports failure (a connection cut during the
// commit) is not written again: the worker asks the destination first.
func TestUnknownOutcomeNotWrittenTwice(t *testing.T) {
	rec := brokertest.NewPositionedRecorder()
	rec.CommitThenFail = 3 // set before any Publish: the field is not guarded
	cfg := testConfig(t.TempDir())
	cfg.MaxBatch = 7
	s := openT(t, cfg, named("exact", rec))
	for i := 0; i < 50; i += 5 {
		publishT(t, s, seqEvents("b", i, 5)...)
	}
	waitEvents(t, rec.Recorder, 50)
	if err := closeT(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	got := rec.Events()
	if len(got) != 50 {
		t.Fatalf("%d events delivered, want 50 (a committed write was repeated)", len(got))
	}
	checkSenderOrder(t, got, 50)
}

// The destination's position goes before the spool's cursor only when it
// is ahead of it and inside the log: a position past the log's end (the
// log lost its unsynced tail) must not make the worker skip new events.
func TestDestinationPastLogEndSkipsNothing(t *testing.T) {
	dir := t.TempDir()
	rec := brokertest.NewPositionedRecorder()
	s := openT(t, testConfig(dir), named("exact", rec))
	id := s.streamID("exact")
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}
	rec.SetPosition(id, 1000)
	s = openT(t, testConfig(dir), named("exact", rec))
	publishT(t, s, seqEvents("c", 0, 20)...)
	waitEvents(t, rec.Recorder, 20)
	if err := closeT(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if p := rec.Position(id); p != 20 {
		t.Fatalf("destination position %d, want 20 (rebased on the log)", p)
	}
}

// The identity is created once, 0640, and kept.
func TestSpoolIdentity(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, testConfig(dir), nil)
	id := s.Identity()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("identity %q is not 32 hex digits", id)
	}
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("identity file mode %v is world-accessible", fi.Mode().Perm())
	}
	s = openT(t, testConfig(dir), nil)
	if s.Identity() != id {
		t.Fatalf("identity changed across restarts: %q then %q", id, s.Identity())
	}
	_ = closeT(t, s, time.Second)
	if err := os.WriteFile(filepath.Join(dir, identityFile), []byte("garbage\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), testConfig(dir), nil, WithLogger(quietLog())); err == nil || !regexp.MustCompile(`identity.*32 hex digits`).MatchString(err.Error()) {
		t.Fatalf("Open with a damaged identity file = %v, want an error naming it", err)
	}
}

// A destination that cannot say its position at start (down) delays
// delivery; it does not make the worker deliver from its cursor blindly.
func TestResumeWaitsForTheDestination(t *testing.T) {
	dir := t.TempDir()
	rec := brokertest.NewPositionedRecorder()
	s := openT(t, testConfig(dir), named("exact", rec))
	id := s.streamID("exact")
	publishT(t, s, seqEvents("d", 0, 30)...)
	waitEvents(t, rec.Recorder, 30)
	s.crash()
	if err := writeCursorFile(osFS{}, dir, map[string]uint64{"exact": 0}, false); err != nil {
		t.Fatal(err)
	}
	rec.FailNext = 5 // the next five calls fail, Position included
	s = openT(t, testConfig(dir), named("exact", rec))
	publishT(t, s, seqEvents("d", 30, 5)...)
	waitEvents(t, rec.Recorder, 35)
	if err := closeT(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := rec.Events(); len(got) != 35 || rec.Position(id) != 35 {
		t.Fatalf("%d events delivered, position %d; want 35 and 35", len(got), rec.Position(id))
	}
}

// hinting is a positioned broker whose streams ask for batches of 50 and
// record the size of each write.
type hinting struct {
	*brokertest.PositionedRecorder
	mu    sync.Mutex
	sizes []int
}

func (h *hinting) OpenStream(ctx context.Context, id string) (broker.Stream, error) {
	st, err := h.PositionedRecorder.OpenStream(ctx, id)
	return &hintingStream{Stream: st, h: h}, err
}

type hintingStream struct {
	broker.Stream
	h *hinting
}

func (s *hintingStream) MinBatch() int { return 50 }

func (s *hintingStream) PublishAt(ctx context.Context, prev, next uint64, evs ...event.Event) error {
	s.h.mu.Lock()
	s.h.sizes = append(s.h.sizes, len(evs))
	s.h.mu.Unlock()
	return s.Stream.PublishAt(ctx, prev, next, evs...)
}

// A stream that asks for bigger batches than max_batch gets them.
func TestStreamBatchHint(t *testing.T) {
	h := &hinting{PositionedRecorder: brokertest.NewPositionedRecorder()}
	cfg := testConfig(t.TempDir())
	cfg.MaxBatch = 7
	s := openT(t, cfg, named("exact", h))
	publishT(t, s, seqEvents("h", 0, 100)...)
	waitEvents(t, h.Recorder, 100)
	if err := closeT(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.Max(h.sizes) != 50 {
		t.Fatalf("write sizes %v: want batches of 50 (the stream's hint), not of max_batch 7", h.sizes)
	}
}
