package brokertest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

var streamSeq atomic.Int64

// testPositioned checks the exactly-once contract of a broker.Positioned
// broker: positions are recorded with the events, a reopened stream
// resumes from the destination's position, a stale writer is refused, and
// after a write with an unknown outcome (its context canceled at some
// point of the commit) Position says whether it committed, all or nothing.
func testPositioned(t *testing.T, h Harness) {
	d := open(t, h)
	pb, ok := d.Broker.(broker.Positioned)
	if !ok {
		t.Skip("not a broker.Positioned broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.Features.Timeout)
	defer cancel()
	id := fmt.Sprintf("conformance-%d-%d", time.Now().UnixNano(), streamSeq.Add(1))
	st := openStream(t, ctx, pb, id)
	if p := position(t, ctx, st); p != 0 {
		t.Fatalf("new stream at position %d, want 0", p)
	}
	evs := make([]event.Event, 0, 200)
	for i := 0; i < 200; i++ {
		evs = append(evs, Seq("pos", i))
	}
	// Positions are the writer's, not counts: 100, 105 (a gap), ...
	if err := st.PublishAt(ctx, 0, 100, evs[:10]...); err != nil {
		t.Fatalf("PublishAt(0, 100): %v", err)
	}
	if p := position(t, ctx, st); p != 100 {
		t.Fatalf("position %d after PublishAt(0, 100), want 100", p)
	}
	if err := st.PublishAt(ctx, 0, 200, evs[10:20]...); !errors.Is(err, broker.ErrPositionMoved) {
		t.Fatalf("PublishAt with a stale prev = %v, want ErrPositionMoved", err)
	}

	// A second stream on the same destination is independent.
	other := openStream(t, ctx, pb, id+"-other")
	if p := position(t, ctx, other); p != 0 {
		t.Fatalf("another stream at position %d, want 0", p)
	}
	closeStream(t, other)

	// A restarted writer resumes where the destination says; the handle it
	// replaced can no longer write.
	again := openStream(t, ctx, pb, id)
	if p := position(t, ctx, again); p != 100 {
		t.Fatalf("reopened stream at position %d, want 100", p)
	}
	if err := again.PublishAt(ctx, 100, 110, evs[10:20]...); err != nil {
		t.Fatalf("PublishAt(100, 110) on the reopened stream: %v", err)
	}
	if err := st.PublishAt(ctx, 100, 120, evs[20:30]...); err == nil {
		t.Fatalf("the replaced stream handle could still write")
	}
	closeStream(t, st)
	written := 20
	if got := countSeq(t, h, d, written); got != written {
		t.Fatalf("%d events at the destination, want %d", got, written)
	}

	// Unknown outcomes: cancel writes at various points of their commit;
	// Position then tells which ones committed, and the retry writes only
	// those that did not. Every event must be there exactly once.
	pos := uint64(110)
	var outcomes [3]int // succeeded, failed but committed, failed and retried
	for i, delay := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		batch := evs[20+i*20 : 40+i*20]
		target := pos + 20
		wctx, wcancel := context.WithCancel(ctx)
		timer := time.AfterFunc(delay, wcancel)
		err := again.PublishAt(wctx, pos, target, batch...)
		timer.Stop()
		wcancel()
		if err == nil {
			outcomes[0]++
		} else {
			p := position(t, ctx, again)
			switch p {
			case target: // committed after all
				outcomes[1]++
			case pos:
				outcomes[2]++
				if err := again.PublishAt(ctx, pos, target, batch...); err != nil {
					t.Fatalf("retry after an unknown outcome: %v", err)
				}
			default:
				t.Fatalf("after a canceled write from %d to %d the position is %d", pos, target, p)
			}
		}
		pos = target
		written += len(batch)
		if p := position(t, ctx, again); p != pos {
			t.Fatalf("position %d, want %d", p, pos)
		}
	}
	t.Logf("canceled writes: %d succeeded, %d failed but committed, %d failed and were retried", outcomes[0], outcomes[1], outcomes[2])
	closeStream(t, again)
	if got := countSeq(t, h, d, written); got != written {
		t.Fatalf("%d events at the destination, want %d (exactly once)", got, written)
	}
}

func openStream(t *testing.T, ctx context.Context, pb broker.Positioned, id string) broker.Stream {
	t.Helper()
	st, err := pb.OpenStream(ctx, id)
	if err != nil {
		t.Fatalf("OpenStream(%q): %v", id, err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

func closeStream(t *testing.T, st broker.Stream) {
	t.Helper()
	if err := st.Close(context.Background()); err != nil {
		t.Fatalf("close stream: %v", err)
	}
}

func position(t *testing.T, ctx context.Context, st broker.Stream) uint64 {
	t.Helper()
	p, err := st.Position(ctx)
	if err != nil {
		t.Fatalf("Position: %v", err)
	}
	return p
}

// countSeq reads the destination and fails on a duplicate of any event;
// it returns how many distinct events it holds.
func countSeq(t *testing.T, h Harness, d Destination, want int) int {
	t.Helper()
	msgs := read(t, h, d, want)
	seen := map[string]bool{}
	for _, m := range msgs {
		s, seq := seqOf(t, m)
		k := fmt.Sprintf("%s/%d", s, seq)
		if seen[k] {
			t.Fatalf("event %s written twice", k)
		}
		seen[k] = true
	}
	return len(seen)
}
