package kafka

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMissingTopicLoggedOnce: however many publishes fail on a missing
// topic, the log warns once, and says once when the topic is back (issue
// 21): no warning per retry, from parley or from the client.
func TestMissingTopicLoggedOnce(t *testing.T) {
	tg := fakeTarget(newFake(t))
	c := tg.cfg
	c.Topic = newTopicName("once")
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, c, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	for range 3 {
		if err := b.Publish(ctx, seqEvents(1, 1)...); !errors.Is(err, ErrTopicNotFound) {
			t.Fatalf("Publish = %v, want ErrTopicNotFound", err)
		}
	}
	createTopic(t, tg.opts, c.Topic, 1)
	for b.Publish(ctx, seqEvents(1, 1)...) != nil {
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	// Deleted while running: said once more, and the client's own
	// warnings about it stay at debug level.
	if _, err := b.adm.DeleteTopics(ctx, c.Topic); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Publish(ctx, seqEvents(1, 1)...); !errors.Is(err, ErrTopicNotFound) {
			t.Fatalf("Publish to the deleted topic = %v, want ErrTopicNotFound", err)
		}
	}
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 2 || strings.Count(out, "kafka topic does not exist") != 2 {
		t.Fatalf("%d warnings, want the missing topic said once per outage:\n%s", n, out)
	}
	if strings.Count(out, "kafka topic exists now: delivering") != 1 {
		t.Fatalf("the topic's return is not said once:\n%s", out)
	}
}
