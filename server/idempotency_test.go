package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/sqldb"
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

// End to end on the built-in defaults (spool, SQLite events.db): a batch
// posted with a key, retried, and retried again after parley restarted,
// is in events.db once.
func TestGatewayIdempotentIngest(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ep, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := fixtures.EventsNDJSON()
	for run := 0; run < 2; run++ {
		g, err := NewGateway(ctx, ep, GatewayOptions{Logger: slog.New(slog.DiscardHandler), Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(g.Server.Handler())
		for try := 0; try < 2; try++ {
			req, _ := http.NewRequest("POST", srv.URL+"/events", bytes.NewReader(body))
			req.Header.Set(idempotency.Header, "gateway-batch")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			replayed := resp.Header.Get(idempotency.ReplayedHeader) == "true"
			if resp.StatusCode != 202 || replayed != (run > 0 || try > 0) {
				t.Fatalf("run %d, try %d: %d, replayed %v", run, try, resp.StatusCode, replayed)
			}
		}
		srv.Close()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := g.Close(cctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	db, err := sqldb.Open(ctx, sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(dir, "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(fixtures.Events()) {
		t.Fatalf("events.db holds %d rows, want %d (the batch once)", n, len(fixtures.Events()))
	}
}
