package spool

import (
	"fmt"
	"io"
	"os"
)

// readChunk is how much a reader reads from a segment at a time.
const readChunk = 256 << 10

// reader reads the log in seq order for one delivery worker, from its
// cursor to the committed end. It never reads past a segment's end, so it
// never sees a batch still being written. Damage is skipped: the events it
// held are reported to onLoss, and reading goes on with the next intact
// record.
type reader struct {
	s      *Spool
	seg    *segment
	f      file
	off    int64  // offset of the next frame in seg
	next   uint64 // seq of the next record to return
	buf    []byte // bytes of seg from bufOff
	bufOff int64
	// onLoss is told of seqs [from, to) that could not be read.
	onLoss func(from, to uint64, where string)
}

func newReader(s *Spool, next uint64, onLoss func(from, to uint64, where string)) *reader {
	return &reader{s: s, next: next, onLoss: onLoss}
}

// read returns up to maxN records holding up to maxBytes of Rasa bytes
// (at least one record if any is available), or none if the reader has
// caught up with the committed end.
func (r *reader) read(maxN int, maxBytes int64) ([]record, error) {
	limit := r.s.committed.Load()
	var out []record
	var size int64
	for len(out) < maxN && r.next < limit && (len(out) == 0 || size < maxBytes) {
		if r.seg == nil {
			if err := r.open(r.s.segmentFor(r.next)); err != nil {
				return partial(out, err)
			}
			continue
		}
		end := r.seg.end.Load()
		if r.off+frameHeaderSize > end {
			if r.off < end {
				r.skipDamage(end, "torn record at the end of the segment")
				continue
			}
			next := r.s.segmentAfter(r.seg.base)
			if next == nil {
				// The seqs up to limit are not on disk: they were lost
				// with an unsynced tail (fsync interval or never).
				r.lost(limit, "missing from the end of the log")
				break
			}
			if err := r.open(next); err != nil {
				return partial(out, err)
			}
			continue
		}
		hdr, err := r.window(r.off, frameHeaderSize, end)
		if err != nil {
			return partial(out, err)
		}
		n := int64(frameLen(hdr))
		if n-frameHeaderSize > maxRecordSize || r.off+n > end {
			r.skipDamage(end, "bad record length")
			continue
		}
		b, err := r.window(r.off, int(n), end)
		if err != nil {
			return partial(out, err)
		}
		payload, _, err := checkFrame(b)
		if err != nil {
			r.skipDamage(end, "checksum mismatch")
			continue
		}
		if isMarker(b) {
			r.off += n // a batch's commit marker: recovery's business
			continue
		}
		seq := frameSeq(payload)
		if seq < r.next {
			r.off += n // before the cursor, already delivered
			continue
		}
		rec, err := decodePayload(payload)
		if err != nil {
			r.skipDamage(end, "undecodable record")
			continue
		}
		if seq > r.next {
			r.lost(seq, "missing records")
		}
		r.off += n
		r.next = seq + 1
		size += int64(len(rec.rasa))
		out = append(out, rec)
	}
	return out, nil
}

// partial ends a read that failed after it had taken records: they are
// returned without the error, since the reader's position is already past
// them and the caller must get them; the error comes back from the next
// read, which starts at what could not be read.
func partial(out []record, err error) ([]record, error) {
	if len(out) > 0 {
		return out, nil
	}
	return nil, err
}

// open switches to seg, reporting any seqs between the reader's position
// and the segment's first record as lost.
func (r *reader) open(seg *segment) error {
	if seg == nil {
		return fmt.Errorf("spool: no segment holds seq %d", r.next)
	}
	f, err := r.s.fsys.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("spool: open segment: %w", err)
	}
	r.close()
	r.seg, r.f, r.off, r.buf, r.bufOff = seg, f, segmentHeaderSize, r.buf[:0], 0
	if seg.base > r.next {
		r.lost(seg.base, "missing segment")
	}
	return nil
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.seg = nil
}

// lost reports seqs [r.next, to) as unreadable and moves past them.
func (r *reader) lost(to uint64, why string) {
	if to <= r.next {
		return
	}
	where := "end of log"
	if r.seg != nil {
		where = fmt.Sprintf("%s offset %d: %s", r.seg.path, r.off, why)
	}
	r.onLoss(r.next, to, where)
	r.next = to
}

// skipDamage moves past a damaged stretch to the next intact record of the
// segment, or to its end. Seqs skipped are reported by the next read.
func (r *reader) skipDamage(end int64, why string) {
	rest, err := r.window(r.off, int(end-r.off), end)
	if err != nil {
		r.s.log.Error("spool: cannot read damaged segment", "segment", r.seg.path, "offset", r.off, "err", err)
		r.off = end
		return
	}
	skipped := int64(len(rest))
	if found, ok := findFrame(rest, 1, r.next); ok {
		skipped = int64(found)
	}
	r.s.log.Warn("spool: skipping damaged bytes in segment", "segment", r.seg.path, "offset", r.off, "bytes", skipped, "reason", why)
	r.s.m.damagedBytes.Add(float64(skipped))
	r.off += skipped
}

// window returns the segment's bytes [off, off+n), which must lie before
// end.
func (r *reader) window(off int64, n int, end int64) ([]byte, error) {
	if off >= r.bufOff && off+int64(n) <= r.bufOff+int64(len(r.buf)) {
		return r.buf[off-r.bufOff:][:n], nil
	}
	size := int64(max(n, readChunk))
	size = min(size, end-off)
	if size < int64(n) {
		return nil, io.ErrUnexpectedEOF
	}
	if int64(cap(r.buf)) < size || (size <= readChunk && cap(r.buf) > 16*readChunk) {
		r.buf = make([]byte, size)
	}
	r.buf = r.buf[:size]
	m, err := r.f.ReadAt(r.buf, off)
	if m < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("spool: read %s at %d: %w", r.seg.path, off, err)
	}
	r.buf, r.bufOff = r.buf[:m], off
	return r.buf[:n], nil
}
