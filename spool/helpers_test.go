package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// quietLog discards logs unless the test runs with -v.
func quietLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// logRecords is a slog handler that keeps every record's level and
// message, for tests of what the spool says.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// count returns how many records at level or above contain substr.
func (l *logRecords) count(level slog.Level, substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level >= level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { fmt.Print(string(p)); return len(p), nil }

// testConfig is a small, fast spool: no fsync, quick retries.
func testConfig(dir string) Config {
	return Config{
		Dir:          dir,
		Fsync:        FsyncNever,
		RetryInitial: time.Millisecond,
		RetryMax:     5 * time.Millisecond,
	}
}

func named(pairs ...any) []broker.Named {
	var out []broker.Named
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, broker.Named{Name: pairs[i].(string), Broker: pairs[i+1].(broker.Broker)})
	}
	return out
}

// openT opens a spool that is closed (or crashed) when the test ends.
func openT(t testing.TB, cfg Config, brokers []broker.Named, opts ...Option) *Spool {
	t.Helper()
	opts = append([]Option{WithLogger(quietLog()), WithRegisterer(prometheus.NewRegistry())}, opts...)
	s, err := Open(context.Background(), cfg, brokers, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// closeT closes s, giving delivery up to d to drain.
func closeT(t testing.TB, s *Spool, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Close(ctx)
}

// crash stops s the way kill -9 would, as far as the disk is concerned:
// no drain, no final cursor write. Whatever was written is in the page
// cache, as after a process crash.
func (s *Spool) crash() {
	s.closeOnce.Do(func() {
		s.acceptMu.Lock()
		s.closed = true
		close(s.w.reqs)
		s.acceptMu.Unlock()
		<-s.w.done
		s.stopRun()
		s.workersWG.Wait()
		close(s.ckptStop)
		<-s.ckptDone
		for _, w := range s.workers {
			w.dl.close()
		}
		s.m.unregister()
		_ = s.unlock()
		s.closeErr = errors.New("crashed")
	})
}

// seqEvents returns n numbered events of sender, without IDs unless
// withIDs.
func seqEvents(sender string, from, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = brokertest.Seq(sender, from+i)
	}
	return out
}

func publishT(t testing.TB, s *Spool, evs ...event.Event) {
	t.Helper()
	if err := s.Publish(context.Background(), evs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitEvents waits until rec has at least n events and returns them.
func waitEvents(t testing.TB, rec *brokertest.Recorder, n int) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := rec.Wait(ctx, n)
	if len(got) < n {
		t.Fatalf("broker got %d events, want %d", len(got), n)
	}
	return got
}

// ids returns the event IDs in order.
func ids(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// dedupe keeps the first delivery of each event ID, in order.
func dedupe(evs []event.Event) []event.Event {
	seen := map[string]bool{}
	var out []event.Event
	for _, ev := range evs {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

func equalIDs(t testing.TB, got, want []event.Event) {
	t.Helper()
	g, w := ids(got), ids(want)
	if len(g) != len(w) {
		t.Fatalf("got %d events, want %d\ngot:  %v\nwant: %v", len(g), len(w), abbreviate(g), abbreviate(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("event %d is %s, want %s", i, g[i], w[i])
		}
	}
}

func abbreviate(s []string) []string {
	if len(s) > 20 {
		return append(append(s[:10:10], "..."), s[len(s)-10:]...)
	}
	return s
}

// gate is a broker that fails with a transient error while closed and
// records what it accepts once opened.
type gate struct {
	*brokertest.Recorder
	mu   sync.Mutex
	open bool
}

func newGate(open bool) *gate { return &gate{Recorder: brokertest.NewRecorder(), open: open} }

var errGateClosed = errors.New("gate: broker unavailable")

func (g *gate) set(open bool) {
	g.mu.Lock()
	g.open = open
	g.mu.Unlock()
}

func (g *gate) Publish(ctx context.Context, evs ...event.Event) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	if !open {
		return errGateClosed
	}
	return g.Recorder.Publish(ctx, evs...)
}

// faultFS injects disk failures into the real file system.
type faultFS struct {
	osFS
	mu sync.Mutex
	// budget is how many more bytes writes may store (negative: no limit);
	// a write past it stores what fits and fails with ENOSPC.
	budget       int64
	failSync     error
	failTruncate error
	// beforeSync, when set, runs before each segment fsync; syncs counts
	// them.
	beforeSync func()
	syncs      int
	// failReadOpen, when set, may fail the read-only opening of a
	// segment (the reader's) by returning an error.
	failReadOpen func(name string) error
	// onSync, when set, runs before every fsync of a file (any file,
	// cursors included) with its name.
	onSync func(name string)
}

func newFaultFS() *faultFS { return &faultFS{budget: -1} }

func (f *faultFS) setBudget(n int64) {
	f.mu.Lock()
	f.budget = n
	f.mu.Unlock()
}

func (f *faultFS) set(fn func(f *faultFS)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f.mu.Lock()
	failRead := f.failReadOpen
	f.mu.Unlock()
	if failRead != nil && flag == os.O_RDONLY && strings.HasSuffix(name, segmentExt) {
		if err := failRead(name); err != nil {
			return nil, err
		}
	}
	of, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: of, fs: f, name: name, segment: strings.HasSuffix(name, segmentExt)}, nil
}

type faultFile struct {
	file
	fs      *faultFS
	name    string
	segment bool
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	n := int64(len(b))
	var err error
	if f.fs.budget >= 0 {
		if n > f.fs.budget {
			n, err = f.fs.budget, syscall.ENOSPC
		}
		f.fs.budget -= n
	}
	f.fs.mu.Unlock()
	m, werr := f.file.WriteAt(b[:n], off)
	if werr != nil {
		return m, werr
	}
	return m, err
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	hook, err, onSync := f.fs.beforeSync, f.fs.failSync, f.fs.onSync
	if f.segment {
		f.fs.syncs++
	}
	f.fs.mu.Unlock()
	if onSync != nil {
		onSync(f.name)
	}
	if hook != nil && f.segment {
		hook()
	}
	if err != nil {
		return err
	}
	return f.file.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	err := f.fs.failTruncate
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.file.Truncate(size)
}
