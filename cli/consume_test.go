package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/auth"
	"github.com/parleyhq/parley/consumer/sqlsrc"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/sqldb"
)

// consumeServer serves the consumer API over dir/events.db.
func consumeServer(t *testing.T, dir string, cfg consumer.Config) *httptest.Server {
	t.Helper()
	srv, _ := consumeHandler(t, dir, cfg)
	return srv
}

// consumeHandler is consumeServer, with the handler.
func consumeHandler(t *testing.T, dir string, cfg consumer.Config) (*httptest.Server, *consumer.Handler) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(dir, "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlsrc.New(ctx, sqlsrc.Options{DB: db, Dialect: sqldb.SQLite, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h, err := consumer.NewHandler(consumer.Options{Config: cfg, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close(ctx)
		src.Close(ctx)
		db.Close()
	})
	return srv, h
}

// The README's command, three times in a row against the default
// configuration (rate limit included): each run prints the next three
// events and leaves no instance behind.
func TestConsumeThreeRunsInARow(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, dir, fixtures.EventsNDJSON(), "publish"); err != nil {
		t.Fatal(err)
	}
	want := fixtures.RasaBytes()
	if len(want) < 9 {
		t.Fatalf("the fixtures hold %d events, want 9 or more", len(want))
	}
	srv, h := consumeHandler(t, dir, consumer.DefaultConfig())
	for i := range 3 {
		out, err := run(t, dir, nil, "consume", "--url", srv.URL, "--group", "demo", "--from", "earliest", "--count", "3")
		if err != nil {
			t.Fatalf("run %d: %v: %s", i+1, err, out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("run %d printed %d lines: %q", i+1, len(lines), out)
		}
		for j, l := range lines {
			if l != string(want[3*i+j]) {
				t.Fatalf("run %d line %d:\n got %s\nwant %s", i+1, j+1, l, want[3*i+j])
			}
		}
		if n := h.ConsumerCount(); n != 0 {
			t.Fatalf("run %d left %d consumer instances", i+1, n)
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Interrupted (Ctrl-C ends the command's context), consume still deletes
// its instance.
func TestConsumeDeletesItsInstanceWhenInterrupted(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, dir, fixtures.EventsNDJSON(), "publish"); err != nil {
		t.Fatal(err)
	}
	srv, h := consumeHandler(t, dir, consumer.DefaultConfig())
	t.Chdir(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := New()
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"consume", "--url", srv.URL, "--group", "interrupted", "--follow", "--from", "earliest"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for h.ConsumerCount() == 0 || !strings.Contains(out.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("consume did not start reading: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted consume: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consume did not stop when interrupted")
	}
	if n := h.ConsumerCount(); n != 0 {
		t.Fatalf("%d consumer instances left after Ctrl-C", n)
	}
}

// TestConsumePrintsRasaBytes publishes the fixtures with parley publish
// and reads them back with parley consume: the output is Rasa's bytes,
// one event a line, and a second run of the group has nothing left.
func TestConsumePrintsRasaBytes(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, dir, fixtures.EventsNDJSON(), "publish"); err != nil {
		t.Fatal(err)
	}
	srv := consumeServer(t, dir, consumer.DefaultConfig())
	out, err := run(t, dir, nil, "consume", "--url", srv.URL, "--from", "earliest", "--wait", "300ms")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	wantRasaLines(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))

	out, err = run(t, dir, nil, "consume", "--url", srv.URL, "--from", "earliest", "--wait", "300ms")
	if err != nil || out != "" {
		t.Fatalf("the group read again: %v %q", err, out)
	}
	// Another group starts over; --count stops early; --records prints
	// whole records.
	out, err = run(t, dir, nil, "consume", "--url", srv.URL, "--group", "other", "--count", "2", "--records", "--wait", "300ms")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"partition":0`) || !strings.Contains(out, `"topic":"rasa_core_events"`) {
		t.Fatalf("--count 2 --records: %v %q", err, out)
	}
}

func TestConsumeFollowWithClientCredentials(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, dir, fixtures.EventsNDJSON(), "publish"); err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashSecretCost("s3cret", 1000)
	if err != nil {
		t.Fatal(err)
	}
	cfg := consumer.DefaultConfig()
	cfg.RateLimit = 0 // four consumers of one group in quick succession
	cfg.Clients = []auth.Client{{ID: "qa", SecretHash: hash, Topics: []string{"rasa_core_events"}}}
	srv := consumeServer(t, dir, cfg)

	out, err := run(t, dir, nil, "consume", "--url", srv.URL, "--follow", "--count", "3")
	if err == nil {
		t.Fatalf("read without a token: %q", out)
	}
	t.Setenv("PARLEY_CLIENT_SECRET", "s3cret")
	out, err = run(t, dir, nil, "consume", "--url", srv.URL, "--client-id", "qa", "--follow", "--count", "3", "--from", "earliest")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := fixtures.RasaBytes()[:3]
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %q", len(lines), out)
	}
	for i := range want {
		if lines[i] != string(want[i]) {
			t.Fatalf("line %d:\n got %s\nwant %s", i+1, lines[i], want[i])
		}
	}
	// The same group continues after the three it committed.
	out, err = run(t, dir, nil, "consume", "--url", srv.URL, "--client-id", "qa", "--follow", "--count", "1")
	if err != nil || strings.TrimSuffix(out, "\n") != string(fixtures.RasaBytes()[3]) {
		t.Fatalf("continuing: %v %q", err, out)
	}
	// --records streams whole records, and commits them the same way.
	out, err = run(t, dir, nil, "consume", "--url", srv.URL, "--client-id", "qa", "--follow", "--count", "1", "--records")
	if err != nil || !strings.Contains(out, `"offset":5,`) || !strings.Contains(out, string(fixtures.RasaBytes()[4])) {
		t.Fatalf("--follow --records: %v %q", err, out)
	}
}

func TestHashSecret(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"consume", "hash-secret", "s3cret"}, {"consume", "hash-secret", "-"}} {
		out, err := run(t, dir, []byte("s3cret\n"), args...)
		if err != nil {
			t.Fatal(err)
		}
		h := strings.TrimSpace(out)
		if !auth.VerifySecret(h, "s3cret") {
			t.Fatalf("%v printed %q, which does not verify", args, out)
		}
	}
	if _, err := run(t, dir, nil, "consume", "hash-secret", "-"); err == nil {
		t.Fatal("hashed an empty secret")
	}
}

func TestConfigCheckReportsTheConsumerAPI(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, dir, nil, "config", "check")
	if err != nil || !strings.Contains(out, "consumer API: reads sql, open to loopback callers only") {
		t.Fatalf("%v: %s", err, out)
	}
}
