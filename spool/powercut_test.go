package spool

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
)

// TestPowerCut runs the spool on a file system that loses power at a
// random operation (cutFS), then recovers the image left on disk and
// checks the guarantee of docs/spool.md:
//
//   - every event acknowledged before the cut is delivered (at least once,
//     counting what was delivered before the cut), with fsync: always;
//     with interval and never, every acknowledged event a completed fsync
//     covered;
//   - no damage or lost event is reported: a power cut is not corruption;
//   - an idempotency key is recovered exactly when its events are;
//   - each sender's events are delivered in order;
//   - the recovered spool takes new events.
//
// Each seed picks the fsync policy, how the cut treats unsynced writes
// (all lost, or pages kept at random and out of order), and the cut point.
// `go test` runs 50 seeds; `make powercut` many more
// (PARLEY_POWERCUT_SEEDS=n, PARLEY_POWERCUT_FIRST_SEED=n to replay one).
func TestPowerCut(t *testing.T) {
	seeds, first := 50, 1
	if v := os.Getenv("PARLEY_POWERCUT_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PARLEY_POWERCUT_SEEDS=%q: want a positive number", v)
		}
		seeds = n
	}
	if v := os.Getenv("PARLEY_POWERCUT_FIRST_SEED"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("PARLEY_POWERCUT_FIRST_SEED=%q: want a number", v)
		}
		first = n
	}
	for seed := first; seed < first+seeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { powerCutOnce(t, int64(seed)) })
	}
}

// cutBatch is one Publish call of the load.
type cutBatch struct {
	sender string
	ids    []string
	key    string
	acked  int64 // order of acknowledgement, from 1; 0: not acknowledged
}

func powerCutOnce(t *testing.T, seed int64) {
	rnd := rand.New(rand.NewSource(seed))
	policy := []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever}[rnd.Intn(3)]
	mode := []cutMode{cutDrop, cutTorn}[rnd.Intn(2)]
	dir := t.TempDir()
	cfg := Config{
		Dir: dir, Fsync: policy, FsyncInterval: time.Millisecond,
		SegmentSize: 4 << 10, MaxBatch: 7, DeliveryLinger: -1,
		RetryInitial: time.Millisecond, RetryMax: 2 * time.Millisecond,
	}
	t.Logf("fsync %s, cut %v", policy, map[cutMode]string{cutDrop: "drops unsynced writes", cutTorn: "keeps random unsynced pages"}[mode])

	// Run 1: load, and the power goes at a random operation.
	fsys := newCutFS()
	var acks, durableMark atomic.Int64
	fsys.onSegmentSync = func() func() {
		mark := acks.Load()
		return func() {
			if mark > durableMark.Load() {
				durableMark.Store(mark)
			}
		}
	}
	before := newFlaky(seed)
	s := openT(t, cfg, named("rec", before), withFS(fsys))
	fsys.mu.Lock()
	fsys.cutAt = fsys.ops + 1 + rnd.Intn(400)
	fsys.mu.Unlock()

	var mu sync.Mutex
	var batches []*cutBatch
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		prnd := rand.New(rand.NewSource(seed*31 + int64(g)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender := fmt.Sprintf("s%d", g)
			for i := 0; i < 40; i++ {
				evs := seqEvents(sender, i*10, 1+prnd.Intn(5))
				b := &cutBatch{sender: sender}
				if prnd.Intn(2) == 0 {
					b.key = fmt.Sprintf("%s-%d", sender, i)
				}
				var err error
				if b.key != "" {
					out := idempotency.Outcome{Status: 202, Body: []byte("{}"), Created: time.Now()}
					_, _, err = s.AppendIdempotent(context.Background(), b.key, out, evs...)
				} else {
					err = s.Publish(context.Background(), evs...)
				}
				for _, ev := range evs {
					b.ids = append(b.ids, ev.ID)
				}
				if err == nil {
					b.acked = acks.Add(1)
				}
				mu.Lock()
				batches = append(batches, b)
				mu.Unlock()
				if err != nil {
					return // the power is out
				}
			}
		}()
	}
	wg.Wait()
	fsys.powerCut()
	s.crash()

	// Run 2: recover the image on a new "boot".
	disk := fsys.image(rnd, mode)
	logs := &logRecords{}
	after := brokertest.NewRecorder()
	s2 := openT(t, cfg, named("rec", after), withFS(disk), WithLogger(slog.New(logs)))
	eventually(t, "delivery of the recovered log", func() bool {
		st := s2.Status()
		return st.Brokers[0].Cursor == st.NextSeq
	})

	delivered := map[string]bool{}
	for _, ev := range before.Events() {
		delivered[ev.ID] = true
	}
	for _, ev := range after.Events() {
		delivered[ev.ID] = true
	}
	mark := durableMark.Load()
	checked := 0
	for _, b := range batches {
		durable := b.acked > 0 && (policy == FsyncAlways || b.acked <= mark)
		all := true
		for _, id := range b.ids {
			all = all && delivered[id]
		}
		if durable && !all {
			t.Errorf("acknowledged batch %s (ack %d, durable up to %d) not delivered after the power cut", b.ids, b.acked, mark)
		}
		if durable {
			checked++
		}
		if b.key == "" {
			continue
		}
		_, found := s2.LookupIdempotent(b.key)
		if durable && !found {
			t.Errorf("idempotency key %s of an acknowledged batch lost", b.key)
		}
		if found && !all {
			t.Errorf("idempotency key %s recovered without its events", b.key)
		}
	}
	if n := testutil.ToFloat64(s2.m.lost.WithLabelValues("rec")); n != 0 {
		t.Errorf("%v events reported lost after a power cut", n)
	}
	if n := testutil.ToFloat64(s2.m.damagedBytes); n != 0 {
		t.Errorf("%v bytes reported damaged after a power cut", n)
	}
	for _, msg := range []string{"corrupt", "lost to on-disk corruption", "damaged"} {
		if n := logs.count(slog.LevelWarn, msg); n != 0 {
			t.Errorf("%d logs say %q after a power cut", n, msg)
		}
	}
	checkBatchOrder(t, after.Events(), batches)

	more := seqEvents("after", 0, 2)
	n := len(after.Events())
	publishT(t, s2, more...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := after.Wait(ctx, n+2)
	if len(got) < n+2 {
		t.Fatalf("the recovered spool did not deliver new events: %d of %d; status %+v", len(got), n+2, s2.Status())
	}
	if got[len(got)-1].ID != more[1].ID {
		t.Errorf("the recovered spool did not deliver a new event")
	}
	t.Logf("%d batches, %d acknowledged and durable, %d ops before the cut, %d events delivered before and %d after",
		len(batches), checked, fsys.ops, len(before.Events()), len(after.Events()))
}

// checkBatchOrder checks that each sender's events arrive in the order
// they were published (duplicates aside: a redelivery repeats a stretch).
func checkBatchOrder(t *testing.T, got []event.Event, batches []*cutBatch) {
	t.Helper()
	pos := map[string]int{}
	sender := map[string]string{}
	n := 0
	for _, b := range batches {
		for _, id := range b.ids {
			n++
			pos[id], sender[id] = n, b.sender
		}
	}
	last := map[string]int{}
	seen := map[string]bool{}
	for _, ev := range got {
		p, ok := pos[ev.ID]
		if !ok || seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		if p < last[sender[ev.ID]] {
			t.Errorf("sender %s: event %s delivered after a later one", sender[ev.ID], ev.ID)
			return
		}
		last[sender[ev.ID]] = p
	}
}

// flaky is a recording broker that fails a third of the publishes, so
// that delivery lags and cursors are written at random points.
type flaky struct {
	*brokertest.Recorder
	mu  sync.Mutex
	rnd *rand.Rand
}

func newFlaky(seed int64) *flaky {
	return &flaky{Recorder: brokertest.NewRecorder(), rnd: rand.New(rand.NewSource(seed))}
}

func (f *flaky) Publish(ctx context.Context, evs ...event.Event) error {
	f.mu.Lock()
	fail := f.rnd.Intn(3) == 0
	f.mu.Unlock()
	if fail {
		return errGateClosed
	}
	return f.Recorder.Publish(ctx, evs...)
}
