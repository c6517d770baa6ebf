package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

func open(t *testing.T, h Harness) Destination {
	t.Helper()
	d := h.Open(t)
	t.Cleanup(func() { _ = d.Broker.Close(context.Background()) })
	return d
}

func read(t *testing.T, h Harness, d Destination, n int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.Features.Timeout)
	defer cancel()
	msgs, err := d.Read(ctx, n)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if len(msgs) < n {
		t.Fatalf("read back %d messages, want %d", len(msgs), n)
	}
	return msgs
}

// Seq builds a numbered event for sender, for order checks.
func Seq(sender string, i int) event.Event {
	body := event.ObjectValue(
		event.Member{Key: "event", Value: event.StringValue("bot")},
		event.Member{Key: "timestamp", Value: event.FloatValue(1700000000 + float64(i)/1000)},
		event.Member{Key: "text", Value: event.StringValue(fmt.Sprintf("message %d", i))},
		event.Member{Key: "seq", Value: event.IntValue(int64(i))},
	)
	ev, err := event.New(sender, body)
	if err != nil {
		panic(err)
	}
	ev.ID = fmt.Sprintf("%s-%06d", sender, i)
	return ev
}

func seqOf(t *testing.T, m Message) (string, int) {
	t.Helper()
	ev, err := event.Parse(m.Body)
	if err != nil {
		t.Fatalf("message is not an event: %v: %q", err, m.Body)
	}
	v, ok := ev.Get("seq")
	if !ok {
		t.Fatalf("message without seq: %s", m.Body)
	}
	f, _ := v.Float()
	return ev.SenderID, int(f)
}

// FixtureEvents parses the shared Rasa fixtures (internal/fixtures) into
// events with IDs fixture-000, fixture-001, ..., and returns them with the
// bytes Rasa publishes for each, for backends' own byte-level tests.
func FixtureEvents(t testing.TB) ([]event.Event, [][]byte) {
	t.Helper()
	var evs []event.Event
	for i, l := range fixtures.Events() {
		ev, err := event.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		ev.ID = fmt.Sprintf("fixture-%03d", i)
		evs = append(evs, ev)
	}
	return evs, fixtures.RasaBytes()
}

func testRasaBytes(t *testing.T, h Harness) {
	d := open(t, h)
	evs, want := FixtureEvents(t)
	ctx := context.Background()
	// Several calls of different sizes, as callers batch.
	for _, chunk := range [][2]int{{0, 1}, {1, 30}, {30, len(evs)}} {
		if err := d.Broker.Publish(ctx, evs[chunk[0]:chunk[1]]...); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	got := read(t, h, d, len(evs))
	if len(got) != len(evs) {
		t.Fatalf("read %d messages, published %d", len(got), len(evs))
	}
	if h.Features.GlobalOrder {
		for i := range got {
			if !bytes.Equal(got[i].Body, want[i]) {
				t.Fatalf("message %d:\n got %s\nwant %s", i, got[i].Body, want[i])
			}
		}
	} else {
		gotBodies, wantBodies := make([]string, len(got)), make([]string, len(want))
		for i := range got {
			gotBodies[i], wantBodies[i] = string(got[i].Body), string(want[i])
		}
		sort.Strings(gotBodies)
		sort.Strings(wantBodies)
		for i := range gotBodies {
			if gotBodies[i] != wantBodies[i] {
				t.Fatalf("bodies differ:\n got %s\nwant %s", gotBodies[i], wantBodies[i])
			}
		}
	}
	byBody := map[string]event.Event{}
	for _, ev := range evs {
		byBody[string(ev.RasaJSON())] = ev
	}
	for _, m := range got {
		ev := byBody[string(m.Body)]
		if h.Features.EventIDs && m.ID != ev.ID {
			t.Errorf("message ID %q, want event ID %q", m.ID, ev.ID)
		}
		if h.Features.SenderKey && string(m.Key) != ev.SenderID {
			t.Errorf("message key %q, want sender %q", m.Key, ev.SenderID)
		}
	}
}

func testOrderPerSender(t *testing.T, h Harness) {
	d := open(t, h)
	senders := []string{"alice", "bob", "carol"}
	const perSender = 200
	var batch []event.Event
	n := 0
	for i := 0; i < perSender; i++ {
		for _, s := range senders {
			batch = append(batch, Seq(s, i))
			if len(batch) == 1+n%17 { // uneven batches
				if err := d.Broker.Publish(context.Background(), batch...); err != nil {
					t.Fatalf("Publish: %v", err)
				}
				batch, n = batch[:0], n+1
			}
		}
	}
	if err := d.Broker.Publish(context.Background(), batch...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := read(t, h, d, perSender*len(senders))
	next := map[string]int{}
	for i, m := range got {
		s, seq := seqOf(t, m)
		if seq != next[s] {
			t.Fatalf("message %d: sender %s seq %d, want %d (order per sender broken)", i, s, seq, next[s])
		}
		next[s]++
	}
	for _, s := range senders {
		if next[s] != perSender {
			t.Errorf("sender %s: %d messages, want %d", s, next[s], perSender)
		}
	}
}

func testConcurrentPublishers(t *testing.T, h Harness) {
	d := open(t, h)
	const workers, each = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender := fmt.Sprintf("worker-%d", w)
			for i := 0; i < each; i += 10 {
				var evs []event.Event
				for j := i; j < i+10; j++ {
					evs = append(evs, Seq(sender, j))
				}
				if err := d.Broker.Publish(context.Background(), evs...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	got := read(t, h, d, workers*each)
	seen := map[string]bool{}
	next := map[string]int{}
	for _, m := range got {
		s, seq := seqOf(t, m)
		key := fmt.Sprintf("%s/%d", s, seq)
		if seen[key] {
			t.Fatalf("duplicate %s", key)
		}
		seen[key] = true
		if seq != next[s] {
			t.Fatalf("sender %s: seq %d after %d", s, seq, next[s]-1)
		}
		next[s]++
	}
	if len(seen) != workers*each {
		t.Fatalf("got %d distinct events, want %d", len(seen), workers*each)
	}
}

// testCloseFlushes closes the broker while publishers are running: every
// Publish that returned nil must be at the destination, every other one
// must have failed with ErrClosed.
func testCloseFlushes(t *testing.T, h Harness) {
	d := h.Open(t)
	const workers = 4
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []string
		other []error
	)
	started := make(chan struct{}, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender := fmt.Sprintf("closer-%d", w)
			for i := 0; ; i++ {
				if i == 1 {
					started <- struct{}{}
				}
				err := d.Broker.Publish(context.Background(), Seq(sender, i))
				mu.Lock()
				if err == nil {
					acked = append(acked, fmt.Sprintf("%s/%d", sender, i))
				} else if !errors.Is(err, broker.ErrClosed) {
					other = append(other, err)
				}
				mu.Unlock()
				if err != nil || i > 5000 {
					return
				}
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-started
	}
	if err := d.Broker.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("Publish during Close failed with %v, want nil or ErrClosed", other[0])
	}
	got := read(t, h, d, len(acked))
	have := map[string]bool{}
	for _, m := range got {
		s, seq := seqOf(t, m)
		have[fmt.Sprintf("%s/%d", s, seq)] = true
	}
	for _, k := range acked {
		if !have[k] {
			t.Fatalf("event %s was acknowledged before Close but is missing (%d acknowledged, %d read)", k, len(acked), len(got))
		}
	}
}

func testPublishAfterClose(t *testing.T, h Harness) {
	d := h.Open(t)
	ctx := context.Background()
	if err := d.Broker.Publish(ctx, Seq("s", 0)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := d.Broker.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Broker.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := d.Broker.Publish(ctx, Seq("s", 1)); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

func testContextCanceled(t *testing.T, h Harness) {
	d := open(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.Broker.Publish(ctx, Seq("s", 0))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a canceled context = %v, want context.Canceled", err)
	}
	// The broker stays usable.
	if err := d.Broker.Publish(context.Background(), Seq("s", 1)); err != nil {
		t.Fatalf("Publish after a canceled one: %v", err)
	}
	got := read(t, h, d, 1)
	found := false
	for _, m := range got {
		if _, seq := seqOf(t, m); seq == 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("event published after the canceled call is missing")
	}
}

func testEmptyAndLarge(t *testing.T, h Harness) {
	d := open(t, h)
	ctx := context.Background()
	if err := d.Broker.Publish(ctx); err != nil {
		t.Fatalf("Publish of nothing: %v", err)
	}
	big := Seq("big", 0).With("text", event.StringValue(strings.Repeat("ä€😀x", 20000)))
	if err := d.Broker.Publish(ctx, big); err != nil {
		t.Fatalf("Publish of a %d-byte event: %v", len(big.RasaJSON()), err)
	}
	got := read(t, h, d, 1)
	if len(got) != 1 || !bytes.Equal(got[0].Body, big.RasaJSON()) {
		t.Fatalf("large event changed in transit (%d messages)", len(got))
	}
}
