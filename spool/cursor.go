package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/parleyhq/parley/broker"
)

// cursorsFile holds every broker's cursor: the seq of the next event to
// deliver to it (all lower seqs were confirmed by the broker or set aside
// as dead letters). It is replaced atomically (write a temporary file,
// fsync, rename, fsync the directory), so a crash leaves the old or the
// new version, and is plain JSON so operators and tests can read it:
//
//	{"version":1,"cursors":{"kafka":1042,"sql":1000}}
const cursorsFile = "cursors.json"

type cursorState struct {
	Version int               `json:"version"`
	Cursors map[string]uint64 `json:"cursors"`
}

// ReadCursors returns the persisted cursors of the spool in dir, by broker
// name: the seq of the next event each broker has yet to confirm. It is
// safe while the spool is open (the file is replaced atomically), for
// tools and fault tests.
func ReadCursors(dir string) (map[string]uint64, error) {
	return readCursorFile(osFS{}, dir)
}

// readCursorFile returns nil, nil when there is no file yet.
func readCursorFile(fsys fileSystem, dir string) (map[string]uint64, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, cursorsFile), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readAll(f)
	if err != nil {
		return nil, err
	}
	var st cursorState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", cursorsFile, err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("%s: unknown version %d", cursorsFile, st.Version)
	}
	if st.Cursors == nil {
		st.Cursors = map[string]uint64{}
	}
	return st.Cursors, nil
}

func writeCursorFile(fsys fileSystem, dir string, cursors map[string]uint64, sync bool) error {
	data, err := json.Marshal(cursorState{Version: 1, Cursors: cursors})
	if err != nil {
		return err
	}
	return writeFileAtomic(fsys, filepath.Join(dir, cursorsFile), append(data, '\n'), sync)
}

// startCursors decides where each broker's delivery starts, creates the
// workers, persists the result and removes segments nobody needs.
func (s *Spool) startCursors(brokers []broker.Named, saved map[string]uint64, savedLost bool) error {
	first := s.segs[0].base
	end := s.w.next
	// No cursor file but events in the log: the file was deleted or lost
	// (its creation not yet durable at a power cut). Starting at the end
	// would silently skip every waiting event; replaying from the oldest
	// repeats some instead (nats-server does the same without its index).
	missing := saved == nil && end > first
	if missing {
		s.log.Error("spool: cursor file missing but the log holds events; every broker restarts from the oldest event kept (duplicates, not loss)",
			"file", filepath.Join(s.dir, cursorsFile), "oldest", first, "next_seq", end)
	}
	changed := savedLost || missing
	for _, b := range brokers {
		c, ok := saved[b.Name]
		switch {
		case savedLost || missing:
			c = first
		case !ok:
			c = end
			changed = true
			if saved != nil {
				s.log.Info("spool: broker is new since the last run; it starts at the end of the log and gets only events accepted from now on",
					"broker", b.Name, "seq", c)
			}
		case c < first:
			s.log.Error("spool: events this broker had not confirmed were removed from the spool directory; resuming at the oldest event kept",
				"broker", b.Name, "cursor", c, "oldest", first)
			c, changed = first, true
		}
		s.workers = append(s.workers, newWorker(s, b.Name, b.Broker, c))
	}
	for name, c := range saved {
		if !slices.ContainsFunc(brokers, func(b broker.Named) bool { return b.Name == name }) {
			pending := uint64(0)
			if c < end {
				pending = end - c
			}
			s.log.Warn("spool: dropping the cursor of a broker no longer configured; its undelivered events will not be delivered",
				"broker", name, "cursor", c, "undelivered", pending)
			changed = true
		}
	}
	for _, w := range s.workers {
		w.persisted = w.cursor.Load()
	}
	s.publishPersisted()
	if changed || saved == nil {
		if err := writeCursorFile(s.fsys, s.dir, s.cursorMap(), s.cfg.Fsync != FsyncNever); err != nil {
			return fmt.Errorf("spool: write cursors: %w", err)
		}
	}
	s.retain(s.minPersisted())
	return nil
}

func (s *Spool) cursorMap() map[string]uint64 {
	m := make(map[string]uint64, len(s.workers))
	for _, w := range s.workers {
		m[w.name] = w.cursor.Load()
	}
	return m
}

// minPersisted is the lowest persisted cursor: every segment wholly below
// it can go. With no brokers, everything written is done with.
func (s *Spool) minPersisted() uint64 {
	low := s.committed.Load()
	for _, w := range s.workers {
		low = min(low, w.persisted)
	}
	return low
}

// kickCheckpoint asks the checkpointer to persist the cursors soon.
func (s *Spool) kickCheckpoint() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// runCheckpoints persists cursors as workers advance them: one write
// covers every advance since the last (group commit again), so cursor
// fsyncs stay off the delivery path. Then it removes segments every broker
// has passed.
func (s *Spool) runCheckpoints() {
	defer close(s.ckptDone)
	var retry <-chan time.Time
	var last time.Time
	for {
		select {
		case <-s.ckptStop:
			return
		case <-s.kick:
		case <-retry:
		}
		retry = nil
		// Let advances accumulate for a moment: under load this turns a
		// cursor write (two fsyncs) per delivered batch into a few a
		// second, leaving the disk to appends. Close writes the last one.
		if wait := time.Until(last.Add(checkpointInterval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-s.ckptStop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		if err := s.checkpoint(); err != nil {
			retry = time.After(time.Second)
		}
	}
}

// checkpointInterval is the least time between cursor writes. A crash
// redelivers at most what was delivered in this long.
const checkpointInterval = 200 * time.Millisecond

// checkpoint persists the cursors if they moved, then applies retention.
func (s *Spool) checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	cur := make(map[string]uint64, len(s.workers))
	changed := false
	for _, w := range s.workers {
		c := w.cursor.Load()
		cur[w.name] = c
		changed = changed || c != w.persisted
	}
	if !changed {
		return nil
	}
	if err := writeCursorFile(s.fsys, s.dir, cur, s.cfg.Fsync != FsyncNever); err != nil {
		s.m.checkpointErrors.Inc()
		s.log.Error("spool: cannot persist cursors; retrying (segments are kept meanwhile)", "err", err)
		return fmt.Errorf("spool: write cursors: %w", err)
	}
	for _, w := range s.workers {
		w.persisted = cur[w.name]
	}
	s.publishPersisted()
	s.retain(s.minPersisted())
	return nil
}

// publishPersisted makes the persisted cursors visible to Status without
// ckptMu. Called with ckptMu held (or before the spool runs).
func (s *Spool) publishPersisted() {
	p := make([]uint64, len(s.workers))
	for i, w := range s.workers {
		p[i] = w.persisted
	}
	s.persistedView.Store(&p)
}

// retain removes the segments whose every event is below low, never the
// active one. It runs on persisted cursors: a segment is only removed
// once no restart could need it.
func (s *Spool) retain(low uint64) {
	s.mu.Lock()
	n := 0
	for n+1 < len(s.segs) && s.segs[n+1].base <= low {
		n++
	}
	if n == 0 {
		s.mu.Unlock()
		return
	}
	newFirst := s.segs[n].base
	s.mu.Unlock()
	// The idempotency keys of the segments going away are saved first, so
	// that a restart still answers their retries for the rest of the
	// window; if that fails the segments stay, and the next checkpoint
	// tries again.
	if err := s.saveKeys(newFirst); err != nil {
		s.log.Error("spool: cannot save idempotency keys; keeping delivered segments until it works", "err", err)
		return
	}
	s.mu.Lock()
	drop := append([]*segment(nil), s.segs[:n]...)
	s.segs = s.segs[n:]
	s.mu.Unlock()
	var freed int64
	for _, seg := range drop {
		// disk counts segments by their end, as does this.
		freed += seg.end.Load()
		if err := s.fsys.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Left on disk, it is found and removed again at the next start.
			s.log.Error("spool: cannot remove a delivered segment", "segment", seg.path, "err", err)
		}
		if err := s.fsys.Remove(segmentKeysPath(seg.path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("spool: cannot remove a delivered segment's keys file", "file", segmentKeysPath(seg.path), "err", err)
		}
	}
	s.capMu.Lock()
	s.disk.Add(-freed)
	s.full = false
	s.capMu.Unlock()
	s.m.segmentsRemoved.Add(float64(len(drop)))
	if s.cfg.Fsync != FsyncNever {
		if err := syncDir(s.fsys, s.dir); err != nil {
			s.log.Warn("spool: fsync of the spool directory after removing segments", "err", err)
		}
	}
	s.log.Debug("spool: removed delivered segments", "segments", len(drop), "bytes", freed)
}
