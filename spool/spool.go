package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// Spool is parley's write-ahead log between accepting events and
// publishing them: Publish returns once the events are on disk, and one
// delivery worker per broker publishes them from there, retrying until
// the broker confirms, across broker outages and parley restarts.
//
// A Spool is a broker.Broker, so the HTTP API publishes to it as it would
// to the brokers themselves.
type Spool struct {
	cfg    Config
	dir    string
	id     string // the spool's identity (identity.go)
	log    *slog.Logger
	fsys   fileSystem
	m      *metrics
	unlock func() error

	mu     sync.Mutex
	segs   []*segment    // the log, oldest first; the last is the active one
	notify chan struct{} // closed and replaced on each commit
	broken error         // set when the log cannot take more appends

	committed atomic.Uint64 // seqs below are durable (per policy) and readable
	disk      atomic.Int64  // bytes of segment files; changed under capMu

	capMu    sync.Mutex
	reserved int64 // bytes of appends queued for the writer
	full     bool  // an append was refused with ErrFull since space last freed

	w       *writer
	workers []*worker

	// keys is the Idempotency-Key index (keys.go); keysFileExists says
	// the keys file is on disk (guarded by ckptMu after Open).
	keys           *keyIndex
	keysFileExists bool
	// persistedView is every worker's persisted cursor, in worker order,
	// published after each cursor write so that Status never waits for a
	// checkpoint's fsyncs.
	persistedView atomic.Pointer[[]uint64]

	ckptMu   sync.Mutex // serializes checkpoints; guards worker.persisted
	kick     chan struct{}
	ckptStop chan struct{}
	ckptDone chan struct{}

	acceptMu sync.RWMutex // guards closed against sends on w.reqs
	closed   bool
	closing  atomic.Bool // set first by Close, so Append refuses at once

	drain     chan struct{} // closed when workers may stop once caught up
	runCtx    context.Context
	stopRun   context.CancelFunc
	workersWG sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// dlRewrite, when set, rewrites dead letters before they are written.
	dlRewrite DeadLetterRewrite
}

var (
	_ broker.Broker = (*Spool)(nil)
	_ broker.Pinger = (*Spool)(nil)
)

// Open opens (creating it if needed) the spool in cfg.Dir, recovers it
// after a crash, and starts delivering to brokers: each resumes from its
// persisted cursor, a broker new since the last run starts at the end of
// the log, and the cursor of a broker no longer configured is dropped.
//
// The spool does not own the brokers: Close the spool first (it drains
// delivery), then the brokers.
func Open(ctx context.Context, cfg Config, brokers []broker.Named, opts ...Option) (*Spool, error) {
	o := options{log: slog.Default(), fsys: osFS{}}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.withDefaults()
	seen := map[string]bool{}
	for _, b := range brokers {
		if b.Name == "" || seen[b.Name] || b.Broker == nil {
			return nil, fmt.Errorf("spool: brokers need distinct names and a broker, got %q twice or empty", b.Name)
		}
		seen[b.Name] = true
	}
	if err := o.fsys.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{
		cfg:      cfg,
		dir:      cfg.Dir,
		log:      o.log,
		fsys:     o.fsys,
		unlock:   unlock,
		notify:   make(chan struct{}),
		kick:     make(chan struct{}, 1),
		ckptStop: make(chan struct{}),
		ckptDone: make(chan struct{}),
		drain:    make(chan struct{}),
		keys:     newKeyIndex(cfg.IdempotencyWindow, cfg.IdempotencyMaxKeys),
	}
	s.m = newMetrics(s)
	s.dlRewrite = o.dlRewrite
	ok := false
	defer func() {
		if !ok {
			if s.w != nil && s.w.f != nil {
				s.w.f.Close()
			}
			unlock()
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.id, err = loadIdentity(s.fsys, s.dir); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	saved, cursorErr := readCursorFile(s.fsys, s.dir)
	if cursorErr != nil {
		s.log.Error("spool: cursor file unreadable; every broker restarts from the oldest event kept (duplicates, not loss)", "err", cursorErr)
	}
	if err := s.recover(saved); err != nil {
		return nil, err
	}
	if err := s.startCursors(brokers, saved, cursorErr != nil); err != nil {
		return nil, err
	}
	if err := s.m.register(o.reg); err != nil {
		return nil, fmt.Errorf("spool: register metrics: %w", err)
	}
	ok = true

	s.log.Info("spool open", "dir", s.dir, "segments", len(s.segs), "bytes", s.disk.Load(),
		"next_seq", s.committed.Load(), "fsync", cfg.Fsync.String(), "brokers", len(brokers))
	s.runCtx, s.stopRun = context.WithCancel(context.WithoutCancel(ctx))
	go s.w.run()
	go s.runCheckpoints()
	for _, w := range s.workers {
		s.workersWG.Add(1)
		go func() {
			defer s.workersWG.Done()
			w.run(s.runCtx)
		}()
	}
	return s, nil
}

// recover finds the segments, cuts a torn tail off the last one, sets up
// the writer after it and rebuilds the idempotency key index. saved
// cursors keep seqs from going backwards if the log lost its unsynced
// tail.
func (s *Spool) recover(saved map[string]uint64) error {
	segs, err := listSegments(s.fsys, s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var maxCursor uint64
	for _, c := range saved {
		maxCursor = max(maxCursor, c)
	}
	w := &writer{s: s, reqs: make(chan *appendReq, 1024), done: make(chan struct{})}
	s.removeOrphanKeys(segs)
	keys := s.readKeysFile()
	if len(segs) == 0 {
		seg, f, err := createSegment(s.fsys, s.dir, maxCursor)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		segs = []*segment{seg}
		w.active, w.f, w.off, w.next = seg, f, segmentHeaderSize, maxCursor
	} else {
		var buf []byte
		for _, seg := range segs[:len(segs)-1] {
			k, err := s.readSegmentKeys(seg, &buf)
			if err != nil {
				// Delivery will meet the same error and retry; only the
				// segment's idempotency keys are forgotten.
				s.log.Error("spool: cannot read a segment for its idempotency keys", "err", err)
			}
			keys = append(keys, k...)
		}
		last := segs[len(segs)-1]
		// The last segment is read whole; a keys file beside it is from a
		// sealing a crash undid, and is rewritten when it is sealed again.
		if err := s.fsys.Remove(segmentKeysPath(last.path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("spool: %w", err)
		}
		res, f, err := s.recoverTail(last)
		if err != nil {
			return err
		}
		keys = append(keys, res.keys...)
		w.segKeys = res.keys
		next := res.next
		if next < maxCursor {
			s.log.Warn("spool: cursors are past the end of the log, which lost its unsynced tail (fsync interval or never) or was cut; new events continue after the cursors",
				"log_end", next, "cursor", maxCursor)
			next = maxCursor
		}
		w.active, w.f, w.off, w.next = last, f, res.end, next
		if res.version == 1 {
			// A segment of the format before commit markers is only read:
			// appends go to a new segment of the current format.
			s.log.Info("spool: upgrading the log format; new events go to a new segment", "old_segment", last.path)
			f.Close()
			seg, nf, err := createSegment(s.fsys, s.dir, next)
			if err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			if seg.path == last.path { // an empty old segment, replaced
				segs = segs[:len(segs)-1]
			}
			segs = append(segs, seg)
			w.active, w.f, w.off, w.segKeys = seg, nf, segmentHeaderSize, nil
		}
	}
	w.synced, w.syncedNext = w.off, w.next
	var disk int64
	for _, seg := range segs {
		disk += seg.end.Load()
	}
	s.segs, s.w = segs, w
	s.disk.Store(disk)
	s.committed.Store(w.next)
	s.keys.add(keys, time.Now())
	return nil
}

// removeOrphanKeys removes the keys files of segments no longer there (a
// crash between removing a segment and its keys file).
func (s *Spool) removeOrphanKeys(segs []*segment) {
	entries, err := s.fsys.ReadDir(s.dir)
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, seg := range segs {
		have[segmentKeysPath(seg.path)] = true
	}
	for _, e := range entries {
		path := filepath.Join(s.dir, e.Name())
		if _, ok := parseSegmentName(strings.TrimSuffix(e.Name(), ".keys") + segmentExt); ok && strings.HasSuffix(e.Name(), ".keys") && !have[path] {
			_ = s.fsys.Remove(path)
		}
	}
}

// readSegmentKeys returns the idempotency keys in a segment's markers,
// reading it into buf (reused across segments).
func (s *Spool) readSegmentKeys(seg *segment, buf *[]byte) ([]markedKey, error) {
	if kf, err := s.fsys.OpenFile(segmentKeysPath(seg.path), os.O_RDONLY, 0); err == nil {
		data, err := readAll(kf)
		kf.Close()
		if err == nil {
			if keys, err := decodeKeys(data); err == nil {
				return keys, nil
			}
		}
		s.log.Warn("spool: a segment's keys file is unreadable; reading the segment instead", "segment", seg.path, "err", err)
	}
	f, err := s.fsys.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", seg.path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: stat %s: %w", seg.path, err)
	}
	if int64(cap(*buf)) < info.Size() {
		*buf = make([]byte, info.Size())
	}
	b := (*buf)[:info.Size()]
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spool: read %s: %w", seg.path, err)
	}
	keys := segmentKeys(b[:n], seg.base)
	// Next time, the small file (a segment from before keys files, or
	// whose file was lost).
	if err := writeFileAtomic(s.fsys, segmentKeysPath(seg.path), encodeKeys(keys), true); err != nil {
		s.log.Warn("spool: cannot save a segment's idempotency keys beside it", "segment", seg.path, "err", err)
	}
	return keys, nil
}

// recoverTail checks the last segment (scanSegment), reports corruption
// before its durable point, cuts the torn tail after it, and fsyncs what
// is kept, which the commit markers of later batches then vouch for.
func (s *Spool) recoverTail(seg *segment) (res scanResult, f file, err error) {
	f, err = s.fsys.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return res, nil, fmt.Errorf("spool: open %s: %w", seg.path, err)
	}
	fail := func(err error) (scanResult, file, error) {
		f.Close()
		return res, nil, fmt.Errorf("spool: recover %s: %w", seg.path, err)
	}
	data, err := readAll(f)
	if err != nil {
		return fail(err)
	}
	res = scanSegment(data, seg.base)
	for _, d := range res.damage {
		s.log.Error("spool: corrupt records before the last durable point of the log (fsynced data changed on disk); skipping to the next intact record",
			"segment", seg.path, "offset", d.off, "bytes", d.length, "lost_events", d.lostTo-d.lostFrom, "first_lost_seq", d.lostFrom, "durable_to", res.durable)
	}
	if res.badHeader {
		if res.records > 0 {
			s.log.Error("spool: segment header damaged; rewriting it", "segment", seg.path)
		}
		if _, err := f.WriteAt(segmentHeaderVersion(seg.base, res.version), 0); err != nil {
			return fail(err)
		}
		res.end = max(res.end, segmentHeaderSize)
	}
	if res.torn > 0 {
		s.log.Warn("spool: cutting a torn write off the end of the log: batches a crash interrupted after the last durable point, never acknowledged with fsync: always",
			"segment", seg.path, "offset", res.end, "bytes", res.torn, "intact_events_cut", res.tornEvents, "durable_to", res.durable, "fsync", s.cfg.Fsync.String())
		s.m.tornBytes.Add(float64(res.torn))
	}
	if res.torn > 0 || int64(len(data)) < res.end {
		if err := f.Truncate(res.end); err != nil {
			return fail(err)
		}
	}
	// Whatever the policy, what is kept is made durable now: the next
	// batch's marker says so, and recovery relies on it.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	seg.end.Store(res.end)
	return res, f, nil
}

// Publish appends evs to the spool and returns once they are durable per
// the fsync policy; delivery to the brokers happens after. Events without
// an ID get one (event.NewID), set in evs itself so the caller can report
// it. It returns ErrFull (with a retry-after, see RetryAfter) when the
// spool is at max_size, ErrTooLarge for events that can never fit, and
// broker.ErrClosed after Close. If ctx ends first Publish returns its
// error and the events may still be appended.
func (s *Spool) Publish(ctx context.Context, evs ...event.Event) error {
	_, err := s.Append(ctx, evs...)
	return err
}

// Append is Publish returning the seq of the last event, the position in
// the log that the cursors count in.
func (s *Spool) Append(ctx context.Context, evs ...event.Event) (uint64, error) {
	return s.append(ctx, evs, "", nil)
}

// append appends evs, recording key and outcome in their batch's marker
// when key is set (the key is then claimed: see AppendIdempotent).
func (s *Spool) append(ctx context.Context, evs []event.Event, key string, outcome []byte) (last uint64, err error) {
	queued := false
	if key != "" {
		defer func() {
			if !queued {
				s.keys.abort(key)
			}
		}()
	}
	if len(evs) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	start := time.Now()
	frames := make([]byte, 0, 512*len(evs))
	for i := range evs {
		if evs[i].ID == "" {
			evs[i].ID = event.NewID()
		}
		at := len(frames)
		frames = appendFrame(frames, evs[i], start.UnixNano())
		if n := len(frames) - at; n-frameHeaderSize > maxRecordSize {
			return 0, broker.Permanent(fmt.Errorf("spool: event %s of %d bytes: %w (the largest record is %d bytes)", evs[i].ID, n, ErrTooLarge, maxRecordSize))
		}
	}
	if n := int64(len(frames)); n+segmentHeaderSize > s.cfg.MaxSize {
		return 0, broker.Permanent(fmt.Errorf("spool: %d events of %d bytes: %w (max_size is %d bytes)", len(evs), n, ErrTooLarge, s.cfg.MaxSize))
	}
	req := &appendReq{frames: frames, count: len(evs), key: key, outcome: outcome, done: make(chan appendResult, 1)}
	req.reserved = int64(len(frames)) + markerSize(0)
	if key != "" {
		req.reserved += int64(keyBytes(key, outcome))
	}
	if s.closing.Load() {
		return 0, broker.ErrClosed
	}
	s.acceptMu.RLock()
	if s.closed {
		s.acceptMu.RUnlock()
		return 0, broker.ErrClosed
	}
	if err := s.brokenErr(); err != nil {
		s.acceptMu.RUnlock()
		return 0, err
	}
	if err := s.reserve(req.reserved); err != nil {
		s.acceptMu.RUnlock()
		s.m.rejectedFull.Add(float64(len(evs)))
		return 0, err
	}
	select {
	case s.w.reqs <- req:
	case <-ctx.Done():
		s.acceptMu.RUnlock()
		s.release(req.reserved)
		return 0, ctx.Err()
	}
	queued = true
	s.acceptMu.RUnlock()
	select {
	case res := <-req.done:
		if res.err != nil {
			return 0, res.err
		}
		s.m.appendDuration.Observe(time.Since(start).Seconds())
		s.m.appended.Add(float64(len(evs)))
		return res.last, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// reserve claims n bytes of max_size for an append, or returns ErrFull.
func (s *Spool) reserve(n int64) error {
	s.capMu.Lock()
	defer s.capMu.Unlock()
	used := s.disk.Load() + s.reserved
	if used+n > s.cfg.MaxSize {
		s.full = true
		return &FullError{RetryAfter: s.retryAfter(), Used: used, Max: s.cfg.MaxSize}
	}
	s.reserved += n
	s.full = false
	return nil
}

// release gives back the reservation of a failed append.
func (s *Spool) release(n int64) {
	s.capMu.Lock()
	s.reserved -= n
	s.capMu.Unlock()
}

// retryAfter suggests when a full spool may have room: space is freed when
// the slowest broker passes a segment, so if a broker is failing, not
// before its next attempt; otherwise soon.
func (s *Spool) retryAfter() time.Duration {
	d := time.Second
	now := time.Now()
	for _, w := range s.workers {
		if next, failing := w.nextAttempt(); failing {
			d = max(d, next.Sub(now).Round(time.Second))
		}
	}
	return min(d, time.Minute)
}

// committedBatch makes a written batch visible to the workers. reserved
// is what its appends had claimed of max_size, written what it took.
func (s *Spool) committedBatch(seg *segment, end int64, next uint64, reserved, written int64) {
	seg.end.Store(end)
	s.capMu.Lock()
	s.reserved -= reserved
	s.disk.Add(written)
	s.capMu.Unlock()
	s.committed.Store(next)
	s.mu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// waitCh returns a channel closed at the next commit.
func (s *Spool) waitCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

func (s *Spool) addSegment(seg *segment) {
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.mu.Unlock()
	s.capMu.Lock()
	s.disk.Add(seg.end.Load())
	s.capMu.Unlock()
}

// segmentFor returns the segment holding seq: the last one starting at or
// before it (the first one if seq was removed).
func (s *Spool) segmentFor(seq uint64) *segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > seq })
	if i == 0 {
		return s.segs[0]
	}
	return s.segs[i-1]
}

// segmentAfter returns the segment following the one starting at base.
func (s *Spool) segmentAfter(base uint64) *segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > base })
	if i == len(s.segs) {
		return nil
	}
	return s.segs[i]
}

func (s *Spool) setBroken(err error) {
	s.mu.Lock()
	if s.broken == nil {
		s.broken = err
	}
	s.mu.Unlock()
	s.log.Error("spool: no longer accepting events until parley restarts", "err", err)
}

func (s *Spool) brokenErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}

// Close stops accepting events (Publish then returns broker.ErrClosed),
// writes those already queued, lets the workers deliver what is in the
// spool until ctx ends, and persists the cursors. Undelivered events stay
// on disk for the next start; Close reports how many. It does not close
// the brokers. Close is idempotent.
func (s *Spool) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Spool) close(ctx context.Context) error {
	s.closing.Store(true)
	done := make(chan error, 1)
	go func() { done <- s.shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Delivery stops with ctx; what is left is the writer's last write and
	// the last cursor write, a moment's work unless the disk hangs (an
	// fsync that never returns, a dead network volume). Close keeps its
	// deadline then, give or take closeGrace, and the shutdown completes in
	// the background if the disk ever answers.
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("spool: close: %w, and the disk has not finished the last write %s later; the spool finishes closing if it does", ctx.Err(), closeGrace)
	}
}

// closeGrace is how long Close waits past its context for the disk to
// finish what is in progress.
const closeGrace = time.Second

func (s *Spool) shutdown(ctx context.Context) error {
	s.acceptMu.Lock()
	s.closed = true
	close(s.w.reqs)
	s.acceptMu.Unlock()
	<-s.w.done

	close(s.drain)
	drained := make(chan struct{})
	go func() {
		s.workersWG.Wait()
		close(drained)
	}()
	var errs []error
	select {
	case <-drained:
	case <-ctx.Done():
		s.stopRun()
		<-drained
	}
	s.stopRun()

	close(s.ckptStop)
	<-s.ckptDone
	if err := s.checkpoint(); err != nil {
		errs = append(errs, err)
	}
	end := s.committed.Load()
	for _, w := range s.workers {
		w.dl.close()
		if c := w.cursor.Load(); c < end {
			errs = append(errs, fmt.Errorf("spool: %d events not yet delivered to %s stay in the spool for the next start", end-c, w.name))
		}
	}
	if len(errs) > 0 && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	s.m.unregister()
	if err := s.unlock(); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("spool closed", "next_seq", end)
	return errors.Join(errs...)
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }
