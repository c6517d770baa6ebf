package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"

	"github.com/parleyhq/parley/event"
)

// A record is one event on disk, in a frame:
//
//	length   uint32 LE   bytes of payload
//	crc      uint32 LE   CRC-32C (Castagnoli) of the length bytes + payload
//	payload:
//	  seq        uint64 LE   the record's sequence number, one per event
//	  appended   int64 LE    when it was accepted, Unix nanoseconds
//	  id         uvarint length + bytes
//	  sender     uvarint length + bytes
//	  headers    uvarint count, then per header key and value as above,
//	             keys sorted
//	  rasa       uvarint length + the event's Rasa bytes
//
// The checksum covers the length so that a corrupt length cannot make a
// wrong slice of the file look valid; the payload carries its own seq so a
// record found by scanning past damage is known to be the expected one.
//
// Format 02 segments end every group-commit batch with a commit marker, a
// frame whose length has markerBit set (see marker.go).
const (
	frameHeaderSize = 8
	// markerBit in the length word marks a commit marker frame.
	markerBit = 1 << 31
	// maxRecordSize caps a payload: larger lengths are corruption.
	maxRecordSize = 64 << 20
	// minPayloadSize is seq + appended + four empty lengths.
	minPayloadSize = 8 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is a decoded frame.
type record struct {
	seq      uint64
	appended int64
	id       string
	sender   string
	headers  map[string]string
	rasa     []byte
}

// size is the frame's size on disk.
func (r *record) size() int64 {
	n := frameHeaderSize + 16 + uvarintLen(len(r.id)) + len(r.id) + uvarintLen(len(r.sender)) + len(r.sender) +
		uvarintLen(len(r.headers)) + uvarintLen(len(r.rasa)) + len(r.rasa)
	for k, v := range r.headers {
		n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	return int64(n)
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// appendFrame encodes ev as a frame with seq and checksum left zero, for
// sealFrame to fill in when the writer assigns the seq.
func appendFrame(dst []byte, ev event.Event, appended int64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize+8)...) // length, crc, seq
	dst = binary.LittleEndian.AppendUint64(dst, uint64(appended))
	dst = appendBytes(dst, ev.ID)
	dst = appendBytes(dst, ev.SenderID)
	dst = binary.AppendUvarint(dst, uint64(len(ev.Headers)))
	if len(ev.Headers) > 0 {
		keys := make([]string, 0, len(ev.Headers))
		for k := range ev.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			dst = appendBytes(dst, k)
			dst = appendBytes(dst, ev.Headers[k])
		}
	}
	rasa := ev.RasaJSON()
	dst = binary.AppendUvarint(dst, uint64(len(rasa)))
	dst = append(dst, rasa...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-frameHeaderSize))
	return dst
}

func appendBytes(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// sealFrame sets the seq of the frame at the start of b and its checksum.
func sealFrame(b []byte, seq uint64) {
	b = b[:frameLen(b)]
	binary.LittleEndian.PutUint64(b[frameHeaderSize:], seq)
	crc := crc32.Update(crc32.Checksum(b[:4], castagnoli), castagnoli, b[frameHeaderSize:])
	binary.LittleEndian.PutUint32(b[4:], crc)
}

// frameLen returns the whole size of the frame starting at b (which must
// hold its header).
func frameLen(b []byte) int {
	return frameHeaderSize + int(binary.LittleEndian.Uint32(b)&^markerBit)
}

// isMarker reports whether the frame starting at b (which must hold its
// header) is a commit marker.
func isMarker(b []byte) bool { return binary.LittleEndian.Uint32(b)&markerBit != 0 }

// Frame errors: errShortFrame means the bytes end before the frame does
// (a torn write at the tail), errBadFrame that the frame is damaged.
var (
	errShortFrame = errors.New("incomplete record")
	errBadFrame   = errors.New("corrupt record")
)

// checkFrame validates the frame at the start of b and returns its payload
// and full size.
func checkFrame(b []byte) (payload []byte, n int, err error) {
	if len(b) < frameHeaderSize {
		return nil, 0, errShortFrame
	}
	raw := binary.LittleEndian.Uint32(b)
	plen, min := raw&^markerBit, uint32(minPayloadSize)
	if raw&markerBit != 0 {
		min = minMarkerSize
	}
	if plen < min || plen > maxRecordSize {
		return nil, 0, errBadFrame
	}
	n = frameHeaderSize + int(plen)
	if len(b) < n {
		return nil, 0, errShortFrame
	}
	payload = b[frameHeaderSize:n]
	crc := crc32.Update(crc32.Checksum(b[:4], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errBadFrame
	}
	return payload, n, nil
}

// frameSeq returns the seq of a checked payload.
func frameSeq(payload []byte) uint64 { return binary.LittleEndian.Uint64(payload) }

// decodePayload decodes a checked payload; strings and bytes are copied
// out of p.
func decodePayload(p []byte) (record, error) {
	var r record
	if len(p) < 16 {
		return r, errBadFrame
	}
	r.seq = binary.LittleEndian.Uint64(p)
	r.appended = int64(binary.LittleEndian.Uint64(p[8:]))
	d := decoder{b: p[16:]}
	r.id = string(d.bytes())
	r.sender = string(d.bytes())
	if nh := d.uvarint(); nh > 0 && d.err == nil {
		if nh > uint64(len(d.b)) {
			return r, errBadFrame
		}
		r.headers = make(map[string]string, nh)
		for i := uint64(0); i < nh && d.err == nil; i++ {
			k := string(d.bytes())
			r.headers[k] = string(d.bytes())
		}
	}
	r.rasa = slices.Clone(d.bytes())
	if d.err != nil || len(d.b) != 0 {
		return r, errBadFrame
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadFrame
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errBadFrame
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

// event rebuilds the event from its record. The record's checksum vouches
// for the bytes, so the body is parsed only if a broker needs it (a
// compact format): republishing the Rasa bytes costs no parse.
func (r *record) event() event.Event {
	ev := event.FromRasaTrusted(r.id, r.sender, r.rasa)
	ev.Headers = r.headers
	return ev
}

// findFrame scans b from offset from for the next intact frame (event or
// marker) whose seq (a marker's next) is at least minSeq, and returns its offset. It is how reading resumes
// past damage: a random byte string passing CRC-32C and carrying a
// plausible seq is vanishingly unlikely. Cheap checks of the length and
// seq come first so that scanning garbage does not checksum at every byte.
func findFrame(b []byte, from int, minSeq uint64) (int, bool) {
	for off := from; off+frameHeaderSize+minMarkerSize <= len(b); off++ {
		plen := binary.LittleEndian.Uint32(b[off:]) &^ markerBit
		if plen < minMarkerSize || plen > maxRecordSize || off+frameHeaderSize+int(plen) > len(b) {
			continue
		}
		if seq := binary.LittleEndian.Uint64(b[off+frameHeaderSize:]); seq < minSeq || seq-minSeq > maxSeqJump {
			continue
		}
		if _, _, err := checkFrame(b[off:]); err == nil {
			return off, true
		}
	}
	return 0, false
}

// maxSeqJump bounds how far past the expected seq a frame found by
// scanning may be: far more than a spool ever holds, far less than random.
const maxSeqJump = 1 << 40
