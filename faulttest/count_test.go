package faulttest

import (
	"testing"

	"github.com/parleyhq/parley/event"
)

// tally counts what arrived at a broker.
type tally struct {
	seen     map[int]int      // seq -> times delivered
	first    map[string][]int // per sender, seqs in first-delivery order
	foreign  int              // messages of other runs
	messages int
}

func newTally() *tally { return &tally{seen: map[int]int{}, first: map[string][]int{}} }

// add records one delivered message body (Rasa bytes).
func (ta *tally) add(t *testing.T, run string, body []byte) {
	t.Helper()
	ta.messages++
	ev, err := event.Parse(body)
	if err != nil {
		t.Fatalf("broker holds a message that is not an event: %v: %q", err, body)
	}
	if r, _ := ev.Get("run"); r.Str() != run {
		ta.foreign++
		return
	}
	v, _ := ev.Get("seq")
	f, _ := v.Float()
	seq := int(f)
	if ta.seen[seq] == 0 {
		ta.first[ev.SenderID] = append(ta.first[ev.SenderID], seq)
	}
	ta.seen[seq]++
}

// report checks every accepted event arrived, in per-sender order, and
// returns the number lost and duplicated.
func (ta *tally) report(t *testing.T, l *load) (lost, duplicated int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, seqs := range l.order {
		for _, seq := range seqs {
			if ta.seen[seq] == 0 {
				lost++
			}
		}
	}
	for _, n := range ta.seen {
		if n > 1 {
			duplicated += n - 1
		}
	}
	for sender, got := range ta.first {
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Errorf("sender %s: event %d delivered (first) after %d: per-sender order broken", sender, got[i], got[i-1])
				break
			}
		}
	}
	return lost, duplicated
}

func (ta *tally) distinct() int { return len(ta.seen) }
