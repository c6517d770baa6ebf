package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/spool"
)

// openSpool opens a spool in dir delivering to rec.
func openSpool(t *testing.T, dir string, rec *brokertest.Recorder) *spool.Spool {
	t.Helper()
	cfg := spool.Config{Dir: dir, Fsync: spool.FsyncNever}
	sp, err := spool.Open(context.Background(), cfg, []broker.Named{{Name: "rec", Broker: rec}}, spool.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close(context.Background()) })
	return sp
}

func post(t *testing.T, s *Server, body []byte, key ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "/events", bytes.NewReader(body))
	for _, k := range key {
		req.Header.Add(idempotency.Header, k)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Result(), string(b)
}

// A batch sent with an Idempotency-Key is accepted once: the retry after a
// lost response, or after parley restarted, gets the first 202 again and
// adds nothing; the same key with another body is refused with 422.
// Without a key, a retry is a new batch.
func TestIngestIdempotencyKey(t *testing.T) {
	dir := t.TempDir()
	rec := brokertest.NewRecorder()
	sp := openSpool(t, dir, rec)
	s, _ := newTestServer(t, Options{Publisher: sp})
	body := fixtures.EventsNDJSON()
	n := len(fixtures.Events())

	resp, first := post(t, s, body, "batch-1")
	if resp.StatusCode != 202 || resp.Header.Get(idempotency.ReplayedHeader) != "" {
		t.Fatalf("first: %d %s %v", resp.StatusCode, first, resp.Header)
	}
	resp, again := post(t, s, body, `"batch-1"`) // the draft's sf-string form
	if resp.StatusCode != 202 || again != first || resp.Header.Get(idempotency.ReplayedHeader) != "true" {
		t.Fatalf("retry: %d %q (first %q) %v", resp.StatusCode, again, first, resp.Header)
	}
	if resp, msg := post(t, s, fixtures.Events()[0], "batch-1"); resp.StatusCode != 422 {
		t.Fatalf("other body, same key: %d %s", resp.StatusCode, msg)
	}
	if resp, msg := post(t, s, body, "a", "b"); resp.StatusCode != 400 {
		t.Fatalf("two keys: %d %s", resp.StatusCode, msg)
	}
	if st := sp.Status(); st.NextSeq != uint64(n) {
		t.Fatalf("spool holds %d events, want %d (once)", st.NextSeq, n)
	}

	// Without a key the same body is a new batch.
	if resp, _ := post(t, s, body); resp.StatusCode != 202 {
		t.Fatal(resp.StatusCode)
	}
	if st := sp.Status(); st.NextSeq != uint64(2*n) {
		t.Fatalf("spool holds %d events, want %d", st.NextSeq, 2*n)
	}

	// After a restart the key is still known (it is in the spool).
	if err := sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sp = openSpool(t, dir, rec)
	s, _ = newTestServer(t, Options{Publisher: sp})
	resp, again = post(t, s, body, "batch-1")
	if resp.StatusCode != 202 || again != first || resp.Header.Get(idempotency.ReplayedHeader) != "true" {
		t.Fatalf("retry after restart: %d %q", resp.StatusCode, again)
	}
	if st := sp.Status(); st.NextSeq != uint64(2*n) {
		t.Fatalf("spool holds %d events after the retry, want %d", st.NextSeq, 2*n)
	}
}

// Requests with one key racing each other (a client retrying while its
// first attempt is still being written) accept the batch once.
func TestIngestIdempotencyKeyConcurrent(t *testing.T) {
	rec := brokertest.NewRecorder()
	sp := openSpool(t, t.TempDir(), rec)
	s, _ := newTestServer(t, Options{Publisher: sp})
	body := fixtures.EventsNDJSON()
	var wg sync.WaitGroup
	var mu sync.Mutex
	replays := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, s, body, "race")
			if resp.StatusCode != 202 {
				t.Errorf("status %d", resp.StatusCode)
			}
			if resp.Header.Get(idempotency.ReplayedHeader) == "true" {
				mu.Lock()
				replays++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	n := len(fixtures.Events())
	if st := sp.Status(); st.NextSeq != uint64(n) || replays != 7 {
		t.Fatalf("spool holds %d events (want %d), %d replays (want 7)", st.NextSeq, n, replays)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := rec.Wait(ctx, n); len(got) != n {
		t.Fatalf("delivered %d, want %d", len(got), n)
	}
}

// A publisher that cannot record keys refuses them instead of accepting
// retries twice.
func TestIngestIdempotencyKeyUnsupported(t *testing.T) {
	s, rec := newTestServer(t, Options{})
	if resp, msg := post(t, s, fixtures.Events()[0], "k"); resp.StatusCode != 501 {
		t.Fatalf("%d %s", resp.StatusCode, msg)
	}
	if len(rec.Events()) != 0 {
		t.Fatal("events accepted")
	}
}
