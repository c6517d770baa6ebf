package spool

import (
	"encoding/binary"
	"hash/crc32"
)

// A commit marker ends every group-commit batch of a format 02 segment:
//
//	length   uint32 LE   bytes of payload, with markerBit set
//	crc      uint32 LE   CRC-32C of the length bytes + payload, as for events
//	payload:
//	  next        uint64 LE  seq after the batch's last event
//	  count       uvarint    events in the batch: seqs [next-count, next)
//	  synced      uvarint    offset in this segment up to which it had been
//	                         fsynced when the batch was written
//	  syncedNext  uvarint    seq of the first event after synced
//	  keys        uvarint count, then per key:
//	                key      uvarint length + bytes (an Idempotency-Key)
//	                last     uvarint, seq of the request's last event
//	                outcome  uvarint length + idempotency.Outcome binary form
//
// The marker says two things recovery needs. Its presence, with all its
// events intact before it, says the batch was written whole: a batch
// without one was being written when the machine stopped and was never
// acknowledged. And synced is a durable point: the bytes before it had
// been fsynced, so damage there is corruption, never a torn write, while
// damage after the last durable point is the tail a crash interrupted (see
// scanSegment). Idempotency keys ride in the marker so that a key is on
// disk exactly when its events are.
//
// next comes first, where an event keeps its seq, so that findFrame's
// plausibility check works on markers too.
type marker struct {
	next, count uint64
	synced      int64
	syncedNext  uint64
	keys        []markedKey
}

// markedKey is an idempotency key recorded with its batch.
type markedKey struct {
	key     string
	last    uint64
	outcome []byte
}

// minMarkerSize is next plus four one-byte uvarints.
const minMarkerSize = 8 + 4

// appendMarker appends m as a sealed marker frame.
func appendMarker(dst []byte, m *marker) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize)...)
	dst = binary.LittleEndian.AppendUint64(dst, m.next)
	dst = binary.AppendUvarint(dst, m.count)
	dst = binary.AppendUvarint(dst, uint64(m.synced))
	dst = binary.AppendUvarint(dst, m.syncedNext)
	dst = binary.AppendUvarint(dst, uint64(len(m.keys)))
	for _, k := range m.keys {
		dst = appendBytes(dst, k.key)
		dst = binary.AppendUvarint(dst, k.last)
		dst = binary.AppendUvarint(dst, uint64(len(k.outcome)))
		dst = append(dst, k.outcome...)
	}
	b := dst[start:]
	binary.LittleEndian.PutUint32(b, uint32(len(b)-frameHeaderSize)|markerBit)
	crc := crc32.Update(crc32.Checksum(b[:4], castagnoli), castagnoli, b[frameHeaderSize:])
	binary.LittleEndian.PutUint32(b[4:], crc)
	return dst
}

// markerSize bounds the size of a marker holding keys of the given total
// key and outcome bytes, so that room can be reserved before it is built.
func markerSize(keyBytes int) int64 {
	return int64(frameHeaderSize + 8 + 4*binary.MaxVarintLen64 + keyBytes)
}

// keyBytes is what one key adds to a marker at most.
func keyBytes(key string, outcome []byte) int {
	return 3*binary.MaxVarintLen64 + len(key) + len(outcome)
}

// decodeMarker decodes a checked marker payload.
func decodeMarker(p []byte) (marker, error) {
	var m marker
	if len(p) < 8 {
		return m, errBadFrame
	}
	m.next = binary.LittleEndian.Uint64(p)
	d := decoder{b: p[8:]}
	m.count = d.uvarint()
	m.synced = int64(d.uvarint())
	m.syncedNext = d.uvarint()
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) || m.count > m.next || m.synced < 0 {
		return m, errBadFrame
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := markedKey{key: string(d.bytes())}
		k.last = d.uvarint()
		k.outcome = append([]byte(nil), d.bytes()...)
		m.keys = append(m.keys, k)
	}
	if d.err != nil || len(d.b) != 0 {
		return m, errBadFrame
	}
	return m, nil
}
