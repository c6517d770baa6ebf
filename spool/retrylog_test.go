package spool

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker/brokertest"
)

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRetriesWarnOnce: a broker failing the same way on every retry (a
// missing Kafka topic may last hours) is warned about once per outage,
// not on every retry; the rest goes to debug (issue 21).
func TestRetriesWarnOnce(t *testing.T) {
	rec := brokertest.NewRecorder()
	rec.FailNext, rec.Err = 20, errors.New("topic does not exist")
	var logs lockedBuilder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := openT(t, testConfig(t.TempDir()), named("kafka", rec), WithLogger(log))
	if err := s.Publish(context.Background(), seqEvents("a", 0, 3)...); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, rec, 3)
	// The worker logs the recovery after the broker took the events.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "spool: broker recovered") {
		if time.Now().After(deadline) {
			t.Fatalf("recovery not logged:\n%s", logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, "spool: publish failed"); n != 1 {
		t.Fatalf("%d warnings for 20 failed retries of one error, want 1:\n%s", n, out)
	}
}
