package spool

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

func fixtureEvents(t testing.TB) []event.Event {
	t.Helper()
	var out []event.Event
	for i, line := range fixtures.Events() {
		ev, err := event.Parse(line)
		if err != nil {
			t.Fatalf("fixture line %d: %v", i+1, err)
		}
		ev.ID = event.NewID()
		out = append(out, ev)
	}
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	evs := fixtureEvents(t)
	evs[0].Headers = map[string]string{"rasa-export-process-id": "p-1", "b": "2"}
	evs[1] = evs[1].Exported()
	want := fixtures.RasaBytes()
	for i, ev := range evs {
		frame := appendFrame(nil, ev, 1234)
		sealFrame(frame, uint64(100+i))
		payload, n, err := checkFrame(frame)
		if err != nil || n != len(frame) {
			t.Fatalf("event %d: checkFrame = %d, %v", i, n, err)
		}
		rec, err := decodePayload(payload)
		if err != nil {
			t.Fatalf("event %d: decode: %v", i, err)
		}
		if rec.seq != uint64(100+i) || rec.appended != 1234 || rec.id != ev.ID || rec.sender != ev.SenderID {
			t.Fatalf("event %d: decoded %+v", i, rec)
		}
		if rec.size() != int64(len(frame)) {
			t.Errorf("event %d: size() = %d, frame is %d bytes", i, rec.size(), len(frame))
		}
		back := rec.event()
		wantBytes := want[i]
		if i == 1 {
			wantBytes = ev.RasaJSON()
		}
		if !bytes.Equal(back.RasaJSON(), wantBytes) {
			t.Errorf("event %d: Rasa bytes\n got %s\nwant %s", i, back.RasaJSON(), wantBytes)
		}
		if back.ID != ev.ID || back.SenderID != ev.SenderID || len(back.Headers) != len(ev.Headers) {
			t.Errorf("event %d: rebuilt %q/%q/%v", i, back.ID, back.SenderID, back.Headers)
		}
		for k, v := range ev.Headers {
			if back.Headers[k] != v {
				t.Errorf("event %d: header %s = %q, want %q", i, k, back.Headers[k], v)
			}
		}
	}
}

// Every single-byte change to a frame is caught, and every truncation
// reads as incomplete, not as a different record.
func TestCheckFrameDetectsDamage(t *testing.T) {
	ev := fixtureEvents(t)[3]
	frame := appendFrame(nil, ev, 42)
	sealFrame(frame, 7)
	for i := range frame {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(frame)
			b[i] ^= x
			if _, _, err := checkFrame(b); err == nil {
				t.Fatalf("flipping byte %d with %#x went unnoticed", i, x)
			}
		}
	}
	for n := range len(frame) {
		_, _, err := checkFrame(frame[:n])
		if err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
		if n >= frameHeaderSize && !errors.Is(err, errShortFrame) {
			t.Fatalf("truncated to %d bytes: %v, want errShortFrame", n, err)
		}
	}
}

func TestFindFrame(t *testing.T) {
	evs := fixtureEvents(t)
	var log []byte
	var offs []int
	for i, ev := range evs[:5] {
		offs = append(offs, len(log))
		log = appendFrame(log, ev, 1)
		sealFrame(log[offs[i]:], uint64(10+i))
	}
	for _, tc := range []struct {
		name   string
		from   int
		minSeq uint64
		want   int
		ok     bool
	}{
		{"from a frame start", offs[1], 11, offs[1], true},
		{"inside a frame", offs[1] + 1, 11, offs[2], true},
		{"seq too low is skipped", offs[1], 13, offs[3], true},
		{"past the last frame", offs[4] + 1, 0, 0, false},
		{"seq beyond the log", 0, 20, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := findFrame(log, tc.from, tc.minSeq)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("findFrame = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, p := range [][]byte{
		make([]byte, 8),
		append(make([]byte, 16), 0xff),
		append(make([]byte, 16), 5, 'a'),
		append(make([]byte, 16), 0, 0, 0, 0, 'x'), // trailing byte
	} {
		if _, err := decodePayload(p); err == nil {
			t.Errorf("decodePayload(%x) accepted", p)
		}
	}
}

// Frames sealed in place inside a larger buffer, as the writer does,
// each check out on their own.
func TestSealFramesInBuffer(t *testing.T) {
	evs := fixtureEvents(t)
	var buf []byte
	for _, ev := range evs {
		buf = appendFrame(buf, ev, 1)
	}
	seq := uint64(0)
	for p := 0; p < len(buf); p += frameLen(buf[p:]) {
		sealFrame(buf[p:], seq)
		seq++
	}
	seq = 0
	for p := 0; p < len(buf); seq++ {
		payload, n, err := checkFrame(buf[p:])
		if err != nil {
			t.Fatalf("frame %d: %v", seq, err)
		}
		if got := frameSeq(payload); got != seq {
			t.Fatalf("frame %d has seq %d", seq, got)
		}
		p += n
	}
	if int(seq) != len(evs) {
		t.Fatalf("%d frames, want %d", seq, len(evs))
	}
}

// FuzzScanSegment: whatever a segment holds, scanning does not panic,
// and everything it accepts is intact records in increasing seq order.
func FuzzScanSegment(f *testing.F) {
	var seg []byte
	seg = append(seg, segmentHeader(5)...)
	for i, ev := range fixtureEvents(f)[:4] {
		at := len(seg)
		seg = appendFrame(seg, ev, 1)
		sealFrame(seg[at:], uint64(5+i))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add(append(bytes.Clone(seg[:40]), seg[80:]...))
	// Format 02: two batches, each with its commit marker, the second
	// vouching for the first.
	var seg2 []byte
	seg2 = append(seg2, segmentHeader(5)...)
	next := uint64(5)
	for b, evs := range [][]event.Event{fixtureEvents(f)[:2], fixtureEvents(f)[2:4]} {
		synced := int64(len(seg2))
		if b == 0 {
			synced = segmentHeaderSize
		}
		for _, ev := range evs {
			at := len(seg2)
			seg2 = appendFrame(seg2, ev, 1)
			sealFrame(seg2[at:], next)
			next++
		}
		seg2 = appendMarker(seg2, &marker{next: next, count: uint64(len(evs)), synced: synced, syncedNext: next - uint64(len(evs)),
			keys: []markedKey{{key: "k", last: next - 1, outcome: []byte{1}}}})
	}
	f.Add(seg2)
	f.Add(seg2[:len(seg2)-5])
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = segmentKeys(b, 5) // must not panic either
		res := scanSegment(b, 5)
		if res.end > int64(len(b)) || res.torn != int64(len(b))-res.end && len(b) >= segmentHeaderSize {
			t.Fatalf("end %d, torn %d for %d bytes", res.end, res.torn, len(b))
		}
		if len(b) > segmentHeaderSize && res.end < res.durable {
			t.Fatalf("cut at %d, before the durable point %d", res.end, res.durable)
		}
		if res.records > 0 && (res.first < 5 || res.next <= res.first) {
			t.Fatalf("seqs %d..%d", res.first, res.next)
		}
		for _, d := range res.damage {
			if d.off < segmentHeaderSize || d.off+d.length > res.end || d.lostTo < d.lostFrom {
				t.Fatalf("damage %+v (end %d)", d, res.end)
			}
		}
	})
}
