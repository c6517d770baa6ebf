package spool

import (
	"bytes"
	"testing"
)

// buildSegment returns a format 02 segment at base 5 with batches of the
// given sizes; each marker vouches for the batches before it, as the
// writer's do with fsync: always.
func buildSegment(t *testing.T, sizes ...int) (seg []byte, batchStarts []int) {
	t.Helper()
	evs := fixtureEvents(t)
	seg = append(seg, segmentHeader(5)...)
	next, synced := uint64(5), int64(segmentHeaderSize)
	for _, n := range sizes {
		batchStarts = append(batchStarts, len(seg))
		first := next
		for i := 0; i < n; i++ {
			at := len(seg)
			seg = appendFrame(seg, evs[int(next)%len(evs)], 1)
			sealFrame(seg[at:], next)
			next++
		}
		seg = appendMarker(seg, &marker{next: next, count: uint64(n), synced: synced, syncedNext: first,
			keys: []markedKey{{key: string(rune('a' + len(batchStarts) - 1)), last: next - 1}}})
		synced = int64(len(seg))
	}
	return seg, batchStarts
}

func TestScanSegmentBatches(t *testing.T) {
	seg, starts := buildSegment(t, 2, 3, 2)
	for _, tc := range []struct {
		name                     string
		b                        []byte
		records                  int
		end                      int64
		keys, damage, tornEvents int
	}{
		{"whole", seg, 7, int64(len(seg)), 3, 0, 0},
		{"last marker short", seg[:len(seg)-2], 5, int64(starts[2]), 2, 0, 2},
		{"last batch, first record zeroed", func() []byte {
			b := bytes.Clone(seg)
			clear(b[starts[2] : starts[2]+20])
			return b
		}(), 5, int64(starts[2]), 2, 0, 1},
		// The second batch is before the last marker's durable point:
		// damage there is corruption, the rest is kept.
		{"fsynced batch damaged", func() []byte {
			b := bytes.Clone(seg)
			b[starts[1]+30] ^= 1
			return b
		}(), 6, int64(len(seg)), 3, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := scanSegment(tc.b, 5)
			if res.records != tc.records || res.end != tc.end || len(res.keys) != tc.keys || len(res.damage) != tc.damage || res.tornEvents != tc.tornEvents {
				t.Fatalf("records %d end %d keys %d damage %d torn events %d; want %d %d %d %d %d",
					res.records, res.end, len(res.keys), len(res.damage), res.tornEvents, tc.records, tc.end, tc.keys, tc.damage, tc.tornEvents)
			}
			if int64(len(tc.b))-res.end != res.torn {
				t.Fatalf("torn %d", res.torn)
			}
		})
	}
}
