package spool

// damage is a stretch of a segment that holds no intact record.
type damage struct {
	off, length int64
	// lostFrom and lostTo bound the seqs that were in it: [lostFrom,
	// lostTo). Equal when no event was lost (garbage between records).
	lostFrom, lostTo uint64
}

// scanResult describes the last segment's content as recovery sees it.
type scanResult struct {
	badHeader bool
	version   int // segment format, 1 or 2
	records   int
	first     uint64 // seq of the first intact record (when records > 0)
	next      uint64 // seq after the last record kept; base when none
	end       int64  // offset after the last record kept
	// durable is the last durable point: the bytes before it had been
	// fsynced, so damage there is corruption and nothing there is cut.
	durable int64
	// damage is corruption before durable: skipped, its events lost.
	damage []damage
	// torn is the number of bytes after end: a write the crash (or power
	// cut) interrupted, cut off. tornEvents counts the intact events in it.
	torn       int64
	tornEvents int
	// keys are the idempotency keys of the batches kept.
	keys []markedKey
}

type spanKind int

const (
	spanEvent spanKind = iota
	spanMarker
	spanDamage
)

// span is one stretch of a segment: an intact event, an intact marker, or
// damage up to the next intact frame.
type span struct {
	off, n int64
	kind   spanKind
	seq    uint64 // an event's seq
	m      marker
}

// walkSegment splits a segment's content b into spans, resuming past
// damage at the next intact frame with a plausible seq.
func walkSegment(b []byte, base uint64) []span {
	var spans []span
	off, minSeq := int64(segmentHeaderSize), base
	for off < int64(len(b)) {
		payload, n, err := checkFrame(b[off:])
		if err == nil {
			if isMarker(b[off:]) {
				if m, err := decodeMarker(payload); err == nil && m.next >= minSeq {
					spans = append(spans, span{off: off, n: int64(n), kind: spanMarker, m: m})
					off += int64(n)
					minSeq = m.next
					continue
				}
			} else if seq := frameSeq(payload); seq >= minSeq {
				// The checksum vouches for the payload; delivery decodes
				// it. Not decoding here keeps start-up, which walks every
				// segment for its idempotency keys, to a checksum pass.
				spans = append(spans, span{off: off, n: int64(n), kind: spanEvent, seq: seq})
				off += int64(n)
				minSeq = seq + 1
				continue
			}
		}
		found, ok := findFrame(b, int(off)+1, minSeq)
		if !ok {
			found = len(b)
		}
		spans = append(spans, span{off: off, n: int64(found) - off, kind: spanDamage})
		off = int64(found)
	}
	return spans
}

// scanSegment decides what of the last segment's content b is the log.
//
// A crash, and above all a power cut, can leave the batch being written
// (with fsync interval or never, every batch written since the last
// fsync) partly on disk, its pages in any order: a record missing, then an
// intact one. Such a tail is cut, without calling it corruption. But what
// had been fsynced is never cut: the commit markers record the last
// durable point, and damage before it is corruption, skipped and reported
// as lost events, the rest kept (the dead-letter path of docs/spool.md).
//
// Before the durable point every intact event is kept. After it, a batch
// is kept only whole: its events intact and in order, then its marker; the
// first batch that is not ends the log. Format 01 segments have no
// markers: their durable point is the end of the last intact record, which
// is how they were recovered before markers existed.
func scanSegment(b []byte, base uint64) scanResult {
	res := scanResult{next: base, end: segmentHeaderSize, version: headerVersion(b, base)}
	spans := walkSegment(b, base)
	if res.version == 0 {
		res.badHeader = true
		res.version = 1
		for _, sp := range spans {
			if sp.kind == spanMarker {
				res.version = 2
			}
		}
	}
	if len(b) <= segmentHeaderSize {
		res.end = min(int64(len(b)), segmentHeaderSize)
		res.durable = res.end
		return res
	}

	durable, durableNext := int64(segmentHeaderSize), base
	for _, sp := range spans {
		switch {
		case res.version == 1 && sp.kind != spanDamage:
			durable = sp.off + sp.n
		case sp.kind == spanMarker && sp.m.synced > durable && sp.m.synced <= int64(len(b)):
			durable, durableNext = sp.m.synced, sp.m.syncedNext
		}
	}
	res.durable = durable

	var (
		pending  []span // events of a batch whose marker is still to come
		awaiting = -1   // index in res.damage of damage whose lostTo is unknown
		strict   bool
	)
	settle := func(to uint64) {
		if awaiting >= 0 {
			res.damage[awaiting].lostTo = max(to, res.damage[awaiting].lostFrom)
			awaiting = -1
		}
	}
	accept := func(seq uint64, end int64) {
		settle(seq)
		if res.records == 0 {
			res.first = seq
		}
		res.records++
		res.next = seq + 1
		res.end = end
	}
	cut := len(spans)
	for i, sp := range spans {
		if !strict && sp.off >= durable {
			strict = true
			if res.end < durable {
				// Damage ended right at the durable point.
				settle(durableNext)
				res.next = max(res.next, durableNext)
				res.end = durable
			}
		}
		if !strict {
			switch sp.kind {
			case spanEvent:
				accept(sp.seq, sp.off+sp.n)
			case spanMarker:
				settle(sp.m.next)
				res.next = max(res.next, sp.m.next)
				res.end = sp.off + sp.n
				res.keys = append(res.keys, sp.m.keys...)
			case spanDamage:
				n := min(sp.n, durable-sp.off)
				res.damage = append(res.damage, damage{off: sp.off, length: n, lostFrom: res.next, lostTo: res.next})
				awaiting = len(res.damage) - 1
				if sp.off+sp.n > durable {
					// The damage runs across the durable point: what
					// follows it was not known to be on disk, so the log
					// ends there, the seq after it known from the marker
					// that vouched for it.
					settle(durableNext)
					res.next = max(res.next, durableNext)
					res.end = durable
					cut = i + 1
				}
			}
			if cut == i+1 {
				break
			}
			continue
		}
		ok := false
		switch sp.kind {
		case spanEvent:
			ok = len(pending) == 0 && sp.seq >= res.next || len(pending) > 0 && sp.seq == pending[len(pending)-1].seq+1
			if ok {
				pending = append(pending, sp)
			}
		case spanMarker:
			ok = len(pending) > 0 && uint64(len(pending)) == sp.m.count && sp.m.next == pending[len(pending)-1].seq+1
			if ok {
				for _, ev := range pending {
					accept(ev.seq, ev.off+ev.n)
				}
				res.end = sp.off + sp.n
				res.keys = append(res.keys, sp.m.keys...)
				pending = pending[:0]
			}
		}
		if !ok {
			cut = i
			break
		}
	}
	if !strict && res.end < durable {
		// The segment ends in damage before the point a marker vouched
		// for: keep the durable stretch, as above.
		settle(durableNext)
		res.next = max(res.next, durableNext)
		res.end = durable
	}
	settle(res.next)
	for _, sp := range spans[min(cut, len(spans)):] {
		if sp.kind == spanEvent {
			res.tornEvents++
		}
	}
	res.tornEvents += len(pending)
	res.torn = int64(len(b)) - res.end
	return res
}

// segmentKeys returns the idempotency keys recorded in the intact markers
// of a segment that is not the last (so wholly fsynced). It runs at every
// start over every segment, so it steps from frame to frame by their
// lengths and checks only the markers' checksums; a length that makes no
// sense (damage) sends it to the careful walk.
func segmentKeys(b []byte, base uint64) []markedKey {
	var keys []markedKey
	for off := segmentHeaderSize; off < len(b); {
		if len(b)-off < frameHeaderSize {
			return segmentKeysCareful(b, base)
		}
		n := frameLen(b[off:])
		if n-frameHeaderSize < minMarkerSize || n-frameHeaderSize > maxRecordSize || off+n > len(b) {
			return segmentKeysCareful(b, base)
		}
		if isMarker(b[off:]) {
			payload, _, err := checkFrame(b[off:])
			if err != nil {
				return segmentKeysCareful(b, base)
			}
			m, err := decodeMarker(payload)
			if err != nil {
				return segmentKeysCareful(b, base)
			}
			keys = append(keys, m.keys...)
		}
		off += n
	}
	return keys
}

func segmentKeysCareful(b []byte, base uint64) []markedKey {
	var keys []markedKey
	for _, sp := range walkSegment(b, base) {
		if sp.kind == spanMarker {
			keys = append(keys, sp.m.keys...)
		}
	}
	return keys
}
