package faulttest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/idempotency"
)

// load streams numbered events to parley's POST /events and records which
// were accepted (answered 202). A request that fails (parley or a broker
// down, 503 back-pressure) is retried until accepted: only 202 counts.
type load struct {
	url      string
	runID    string // distinguishes this run's events
	total    int
	batch    int
	workers  int
	senders  int
	accepted atomic.Int64
	retries  atomic.Int64
	replayed atomic.Int64 // retries answered with the first outcome

	mu      sync.Mutex
	order   map[string][]int // per sender, seqs in acceptance order
	onCross []crossing
}

// crossing calls fn once when the accepted count reaches at.
type crossing struct {
	at   int64
	fn   func()
	done bool
}

func newLoad(url, run string, total int) *load {
	return &load{url: url, runID: run, total: total, batch: 200, workers: 4, senders: 40, order: map[string][]int{}}
}

// when registers fn to run (in its own goroutine, awaited by run) when at
// events have been accepted.
func (l *load) when(at int, fn func()) {
	l.onCross = append(l.onCross, crossing{at: int64(at), fn: fn})
}

func (l *load) body(seqs []int) []byte {
	var b bytes.Buffer
	for _, seq := range seqs {
		fmt.Fprintf(&b, `{"sender_id":"%s","event":"bot","timestamp":%d.%06d,"text":"fault test","seq":%d,"run":"%s"}`+"\n",
			l.sender(seq), 1700000000+seq/1000, seq%1000, seq, l.runID)
	}
	return b.Bytes()
}

func (l *load) sender(seq int) string { return fmt.Sprintf("%s-s%02d", l.runID, seq%l.senders) }

// run streams every event; it returns when all are accepted or ctx ends.
func (l *load) run(ctx context.Context, t *testing.T) {
	client := &http.Client{Timeout: 30 * time.Second}
	var hooks sync.WaitGroup
	var wg sync.WaitGroup
	// Worker w owns the senders s with s % workers == w, and posts their
	// events in order, so acceptance order per sender is well defined.
	for w := 0; w < l.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seqs []int
			for seq := 0; seq < l.total; seq++ {
				if (seq%l.senders)%l.workers != w {
					continue
				}
				seqs = append(seqs, seq)
				if len(seqs) == l.batch {
					if !l.post(ctx, client, seqs, &hooks) {
						return
					}
					seqs = seqs[:0]
				}
			}
			if len(seqs) > 0 {
				l.post(ctx, client, seqs, &hooks)
			}
		}()
	}
	wg.Wait()
	hooks.Wait()
	if ctx.Err() != nil {
		t.Fatalf("load: %v after %d accepted", ctx.Err(), l.accepted.Load())
	}
}

// post sends one batch until it is accepted, with the same
// Idempotency-Key every time, so that a retry of a request whose answer
// was lost (parley killed mid-request) is not accepted twice.
func (l *load) post(ctx context.Context, client *http.Client, seqs []int, hooks *sync.WaitGroup) bool {
	body := l.body(seqs)
	key := fmt.Sprintf("%s-%d", l.runID, seqs[0])
	for {
		req, _ := http.NewRequestWithContext(ctx, "POST", l.url+"/events", bytes.NewReader(body))
		req.Header.Set(idempotency.Header, key)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				if resp.Header.Get(idempotency.ReplayedHeader) != "" {
					l.replayed.Add(1)
				}
				break
			}
		}
		if ctx.Err() != nil {
			return false
		}
		l.retries.Add(1)
		time.Sleep(50 * time.Millisecond) // back off before re-sending the batch
	}
	l.mu.Lock()
	for _, seq := range seqs {
		s := l.sender(seq)
		l.order[s] = append(l.order[s], seq)
	}
	n := l.accepted.Add(int64(len(seqs)))
	for i := range l.onCross {
		if c := &l.onCross[i]; !c.done && n >= c.at {
			c.done = true
			hooks.Add(1)
			go func() { defer hooks.Done(); c.fn() }()
		}
	}
	l.mu.Unlock()
	return true
}

// idempotentIngest reports whether parley at url honours Idempotency-Key
// on POST /events: it posts one event (of another run, which the counts
// ignore) twice with the same key and looks for the replay header.
func idempotentIngest(t *testing.T, url, run string) bool {
	t.Helper()
	body := fmt.Sprintf(`{"sender_id":"probe","event":"bot","timestamp":1700000000,"text":"probe","seq":0,"run":"probe-%s"}`+"\n", run)
	replayed := false
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("POST", url+"/events", bytes.NewReader([]byte(body)))
		req.Header.Set(idempotency.Header, "probe-"+run)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		resp.Body.Close()
		replayed = resp.Header.Get(idempotency.ReplayedHeader) != ""
	}
	return replayed
}
