package ingest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/internal/fixtures"
)

func TestDecodeBody(t *testing.T) {
	cases := []struct {
		name, body, sender string
		n                  int
		err                string
	}{
		{name: "array", body: `[{"sender_id":"a","event":"bot","timestamp":1},{"sender_id":"b","event":"bot","timestamp":2}]`, n: 2},
		{name: "object", body: `{"sender_id":"a","event":"bot","timestamp":1}`, n: 1},
		{name: "ndjson", body: "{\"sender_id\":\"a\",\"event\":\"bot\",\"timestamp\":1}\n\n{\"sender_id\":\"a\",\"event\":\"bot\",\"timestamp\":2}\n", n: 2},
		{name: "sender from caller", body: `[{"event":"bot","timestamp":1}]`, sender: "url", n: 1},
		{name: "bad index", body: `[{"sender_id":"a","event":"bot","timestamp":1},{"sender_id":"a","event":"bot","timestamp":"soon"}]`, err: "index 1: timestamp: must be a number"},
		{name: "no timestamp", body: `[{"sender_id":"a","event":"bot"},{"sender_id":"a","event":"bot","timestamp":null}]`, n: 2},
		{name: "not object", body: `[{"sender_id":"a","event":"bot","timestamp":1}, 5]`, err: "index 1: an event must be a JSON object, got number"},
		{name: "bad line", body: "{\"sender_id\":\"a\",\"event\":\"bot\",\"timestamp\":1}\n{\"sender_id\":\"a\",\n", err: "line 2: invalid JSON"},
		{name: "missing sender", body: `{"event":"bot","timestamp":1}`, err: "line 1: sender_id: is missing"},
		{name: "empty", body: " \n", err: "no events"},
		{name: "empty array", body: "[]", err: "no events"},
		{name: "broken array", body: `[{"a":1}`, err: "invalid JSON at byte 8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := DecodeBody([]byte(c.body), c.sender)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want error containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != c.n {
				t.Fatalf("got %d events", len(evs))
			}
			for _, ev := range evs {
				if ev.ID == "" || (c.sender != "" && ev.SenderID != c.sender) {
					t.Fatalf("event not prepared: id=%q sender=%q", ev.ID, ev.SenderID)
				}
			}
		})
	}
}

func TestStreamPublishesBeforeBadLine(t *testing.T) {
	lines := fixtures.Events()
	input := strings.Join([]string{string(lines[0]), string(lines[1]), "", string(lines[2]), `{"sender_id":"x","event":"bot","timestamp":"soon"}`, string(lines[3])}, "\n")
	rec := brokertest.NewRecorder()
	n, err := Stream(context.Background(), NewReader(strings.NewReader(input)), rec, StreamOptions{BatchSize: 2})
	var le *LineError
	if !errors.As(err, &le) || le.Line != 5 || !strings.Contains(err.Error(), "line 5: timestamp: must be a number") {
		t.Fatalf("got %v, want line 5 error", err)
	}
	if n != 3 || len(rec.Events()) != 3 {
		t.Fatalf("published %d (recorded %d), want the 3 events before the bad line", n, len(rec.Events()))
	}
	for i, ev := range rec.Events() {
		if string(ev.RasaJSON()) != string(fixtures.RasaBytes()[i]) {
			t.Fatalf("event %d: %s", i, ev.RasaJSON())
		}
	}
}

func TestStreamRetriesAndBatches(t *testing.T) {
	var b strings.Builder
	for _, l := range fixtures.Events() {
		b.Write(l)
		b.WriteByte('\n')
	}
	rec := brokertest.NewRecorder()
	rec.FailNext = 2
	retries := 0
	n, err := Stream(context.Background(), NewReader(strings.NewReader(b.String())), rec, StreamOptions{
		BatchSize: 50,
		Backoff:   broker.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond},
		OnRetry:   func(int, error, time.Duration) { retries++ },
	})
	if err != nil || n != 84 || retries != 2 {
		t.Fatalf("n=%d err=%v retries=%d", n, err, retries)
	}
	if rec.Calls() != 4 { // 2 failures, then batches of 50 and 34
		t.Fatalf("calls = %d", rec.Calls())
	}
}

func TestStreamGivesUpOnPermanent(t *testing.T) {
	rec := brokertest.NewRecorder()
	rec.FailNext, rec.Err = 1, broker.Permanent(errors.New("too large"))
	_, err := Stream(context.Background(), NewReader(strings.NewReader(string(fixtures.Events()[0]))), rec, StreamOptions{})
	if !errors.Is(err, broker.ErrPermanent) {
		t.Fatalf("got %v", err)
	}
}

// TestStreamLinger checks a slow producer's events go out without waiting
// for a full batch.
func TestStreamLinger(t *testing.T) {
	pr, pw := io.Pipe()
	rec := brokertest.NewRecorder()
	done := make(chan error, 1)
	go func() {
		_, err := Stream(context.Background(), NewReader(pr), rec, StreamOptions{BatchSize: 1000, Linger: 5 * time.Millisecond})
		done <- err
	}()
	if _, err := pw.Write(append(fixtures.Events()[0], '\n')); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := rec.Wait(ctx, 1); len(got) != 1 {
		t.Fatalf("event held back: %d published", len(got))
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReaderSenderOverride(t *testing.T) {
	r := NewReader(strings.NewReader(`{"event":"bot","timestamp":1}` + "\n" + `{"sender_id":"own","event":"bot","timestamp":1}`))
	r.SenderID = "forced"
	for i := 0; i < 2; i++ {
		ev, err := r.Next()
		if err != nil || ev.SenderID != "forced" {
			t.Fatalf("event %d: %v %q", i, err, ev.SenderID)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}
