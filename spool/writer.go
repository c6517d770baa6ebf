package spool

import (
	"errors"
	"fmt"
	"time"
)

// appendReq is one Append call waiting for the writer.
type appendReq struct {
	frames   []byte // encoded frames, seq and checksum unset
	count    int
	reserved int64 // bytes of max_size claimed: frames and room in the marker
	// key, when set, is recorded in the batch's commit marker with
	// outcome (idempotency.Outcome's binary form).
	key     string
	outcome []byte
	done    chan appendResult
}

type appendResult struct {
	last uint64 // seq of the request's last event
	err  error
}

// maxWriteBytes bounds one group-commit write: requests queued while a
// write is in progress join the next one up to this size.
const maxWriteBytes = 4 << 20

// writer owns the active segment: the one goroutine that appends to the
// log. Concurrent Append calls queue on reqs; each loop turn takes every
// queued request, writes them with one write and one fsync (group
// commit), and only then answers them, so an Append returns once its
// events are as durable as the fsync policy makes them.
type writer struct {
	s      *Spool
	active *segment
	f      file  // active segment, open for writing
	off    int64 // write offset in f: active.end
	next   uint64
	dirty  bool // written but not fsynced
	// synced is the offset in the active segment up to which it is
	// fsynced, and syncedNext the seq of the first event after it: the
	// durable point each commit marker records.
	synced     int64
	syncedNext uint64
	// segKeys are the idempotency keys in the active segment's markers,
	// saved beside it when it is sealed (see sealKeys).
	segKeys []markedKey
	buf     []byte
	reqs    chan *appendReq
	done    chan struct{}
}

func (w *writer) run() {
	defer close(w.done)
	var tick <-chan time.Time
	if w.s.cfg.Fsync == FsyncInterval {
		t := time.NewTicker(w.s.cfg.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*appendReq, 0, 64)
	for {
		select {
		case r, ok := <-w.reqs:
			if !ok {
				w.finish()
				return
			}
			batch = append(batch[:0], r)
			size := len(r.frames)
		more:
			for size < maxWriteBytes {
				select {
				case r, ok := <-w.reqs:
					if !ok {
						break more
					}
					batch = append(batch, r)
					size += len(r.frames)
				default:
					break more
				}
			}
			w.commit(batch, size)
			clear(batch)
		case <-tick:
			if w.dirty && w.s.cfg.Fsync == FsyncInterval {
				w.sync()
			}
		}
	}
}

// commit writes a batch into the active segment, followed by its commit
// marker, rolling to a new segment first if the batch does not fit. A
// batch never spans segments, so a failure is undone by truncating one
// file.
func (w *writer) commit(batch []*appendReq, size int) {
	start := time.Now()
	if err := w.s.brokenErr(); err != nil {
		w.fail(batch, err)
		return
	}
	keyed := 0
	for _, r := range batch {
		if r.key != "" {
			keyed += keyBytes(r.key, r.outcome)
		}
	}
	if w.off > segmentHeaderSize && w.off+int64(size)+markerSize(keyed) > w.s.cfg.SegmentSize {
		if err := w.roll(); err != nil {
			w.fail(batch, err)
			return
		}
	}
	pre, preNext := w.off, w.next
	buf := w.buf[:0]
	results := make([]uint64, len(batch))
	m := marker{synced: w.synced, syncedNext: w.syncedNext}
	for i, r := range batch {
		at := len(buf)
		buf = append(buf, r.frames...)
		for p := at; p < len(buf); p += frameLen(buf[p:]) {
			sealFrame(buf[p:], w.next)
			w.next++
			m.count++
		}
		results[i] = w.next - 1
		if r.key != "" {
			m.keys = append(m.keys, markedKey{key: r.key, last: results[i], outcome: r.outcome})
		}
	}
	m.next = w.next
	buf = appendMarker(buf, &m)
	if cap(buf) <= 2*maxWriteBytes {
		w.buf = buf
	}
	_, err := w.f.WriteAt(buf, w.off)
	if err == nil && w.s.cfg.Fsync == FsyncAlways {
		err = w.f.Sync()
	}
	if err != nil {
		w.next = preNext
		err = fmt.Errorf("spool: write %s: %w", w.active.path, err)
		// Undo the partial write so the next batch lands where this one
		// began. If even that fails the file's tail is unknown: stop
		// accepting until a restart recovers the segment.
		if terr := w.f.Truncate(pre); terr != nil {
			w.s.setBroken(fmt.Errorf("spool: cannot undo a failed write (%v): %w", err, terr))
		}
		w.fail(batch, err)
		return
	}
	w.off += int64(len(buf))
	if w.s.cfg.Fsync == FsyncAlways {
		w.synced, w.syncedNext = w.off, w.next
	} else {
		w.dirty = true
	}
	var reserved int64
	for _, r := range batch {
		reserved += r.reserved
	}
	w.s.committedBatch(w.active, w.off, w.next, reserved, int64(len(buf)))
	w.s.keys.commit(m.keys)
	w.segKeys = append(w.segKeys, m.keys...)
	w.s.m.writeDuration.Observe(time.Since(start).Seconds())
	for i, r := range batch {
		r.done <- appendResult{last: results[i]}
	}
}

func (w *writer) fail(batch []*appendReq, err error) {
	w.s.m.appendErrors.Inc()
	w.s.log.Error("spool: append failed", "events", countEvents(batch), "err", err)
	for _, r := range batch {
		w.s.release(r.reserved)
		if r.key != "" {
			w.s.keys.abort(r.key)
		}
		r.done <- appendResult{err: err}
	}
}

func countEvents(batch []*appendReq) int {
	n := 0
	for _, r := range batch {
		n += r.count
	}
	return n
}

// roll seals the active segment and starts a new one at the next seq.
// The sealed segment and the directory are fsynced under every policy (a
// few fsyncs a segment, even with fsync: never), so that only the last
// segment can hold a torn write and recovery can call damage in any other
// one corruption.
func (w *writer) roll() error {
	if w.dirty {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("spool: fsync %s: %w", w.active.path, err)
		}
		w.dirty = false
	}
	w.sealKeys()
	seg, f, err := createSegment(w.s.fsys, w.s.dir, w.next)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := w.f.Close(); err != nil {
		w.s.log.Warn("spool: close segment", "segment", w.active.path, "err", err)
	}
	w.s.addSegment(seg)
	w.active, w.f, w.off = seg, f, segmentHeaderSize
	w.synced, w.syncedNext = segmentHeaderSize, w.next
	w.segKeys = nil
	return nil
}

// sealKeys writes the idempotency keys of the segment being sealed to its
// keys file (00000000000000001234.keys, the keys file format), so that
// start-up reads that small file instead of the whole segment. Without it
// (a failed write, a crash in between) start-up scans the segment: the
// file only saves time.
func (w *writer) sealKeys() {
	path := segmentKeysPath(w.active.path)
	if err := writeFileAtomic(w.s.fsys, path, encodeKeys(w.segKeys), true); err != nil {
		// A keys file from an earlier sealing (before a crash made this
		// segment the last again) would now be missing keys.
		_ = w.s.fsys.Remove(path)
		w.s.log.Warn("spool: cannot save a segment's idempotency keys beside it; start-up will read the segment", "file", path, "err", err)
	}
}

// sync fsyncs the active segment for FsyncInterval. Events acknowledged
// since the last sync may be lost if it fails, and the page cache state
// is unknown after a failed fsync, so the spool stops accepting (as
// PostgreSQL panics) instead of acknowledging more on a failing disk.
func (w *writer) sync() {
	if err := w.f.Sync(); err != nil {
		w.s.setBroken(fmt.Errorf("spool: fsync %s: %w", w.active.path, err))
		return
	}
	w.dirty = false
	w.synced, w.syncedNext = w.off, w.next
}

// finish flushes and closes the active segment when the spool closes.
func (w *writer) finish() {
	var errs []error
	if w.s.cfg.Fsync != FsyncNever {
		if err := w.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("spool: fsync %s: %w", w.active.path, err))
		}
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		w.s.log.Error("spool: closing the active segment", "err", err)
	}
}
