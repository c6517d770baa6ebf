package rabbitmq

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func newTestSession() *session {
	s := &session{
		b:         &Broker{cfg: DefaultConfig(), log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		failed:    make(chan struct{}),
		unpaused:  make(chan struct{}),
		redeclare: make(chan struct{}, 1),
	}
	close(s.unpaused)
	return s
}

// TestPause: a blocked connection or stopped flow makes senders wait until
// both are lifted, the session fails, or their context ends.
func TestPause(t *testing.T) {
	s := newTestSession()
	if err := s.waitUnpaused(context.Background()); err != nil || s.pauseReason() != "" {
		t.Fatalf("unpaused session: wait = %v, reason %q", err, s.pauseReason())
	}
	s.setPause(func() { s.blocked = "low on memory" })
	s.setPause(func() { s.flowOff = true })
	if !s.paused.Load() || s.pauseReason() != "connection blocked by RabbitMQ: low on memory" {
		t.Fatalf("paused = %v, reason %q", s.paused.Load(), s.pauseReason())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.waitUnpaused(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "low on memory") {
		t.Fatalf("wait while blocked = %v, want a deadline error naming the reason", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.waitUnpaused(context.Background()) }()
	s.setPause(func() { s.blocked = "" })
	if s.pauseReason() != "channel flow stopped by RabbitMQ" {
		t.Fatalf("reason %q, want the flow stop", s.pauseReason())
	}
	select {
	case err := <-done:
		t.Fatalf("wait returned %v while flow is still stopped", err)
	default:
	}
	s.setPause(func() { s.flowOff = false })
	if err := <-done; err != nil {
		t.Fatalf("wait after unpausing: %v", err)
	}
	if s.paused.Load() {
		t.Fatal("still paused")
	}
	s.setPause(func() { s.blocked = "disk" })
	go func() { done <- s.waitUnpaused(context.Background()) }()
	s.fail(errors.New("gone"))
	if err := <-done; err != nil {
		t.Fatalf("wait on a failed session = %v, want nil (the sender finds it failed)", err)
	}
}

// TestResolve matches confirmations to in-flight records in tag order:
// acks complete calls, returned messages fail theirs with ErrUnroutable,
// nacks and gaps fail the session and keep the records for republishing.
func TestResolve(t *testing.T) {
	msg := func(id string) amqp.Publishing { return amqp.Publishing{MessageId: id, Body: []byte(id)} }
	setup := func(n int) (*session, *call, []*record) {
		s := newTestSession()
		c := newCall(n)
		var recs []*record
		for i := range n {
			r := &record{seq: uint64(i), msg: msg(string(rune('a' + i))), call: c}
			s.nextTag++
			r.tag = s.nextTag
			s.inflight.push(r)
			recs = append(recs, r)
		}
		return s, c, recs
	}
	ack := func(tags ...uint64) []amqp.Confirmation {
		var out []amqp.Confirmation
		for _, t := range tags {
			out = append(out, amqp.Confirmation{DeliveryTag: t, Ack: true})
		}
		return out
	}

	t.Run("acks complete the call", func(t *testing.T) {
		s, c, _ := setup(3)
		s.resolve(ack(1, 2), nil)
		if c.finished() {
			t.Fatal("call finished before its last ack")
		}
		s.resolve(ack(3), nil)
		if !c.finished() || c.err != nil {
			t.Fatalf("call finished %v err %v", c.finished(), c.err)
		}
	})
	t.Run("returned message fails the call", func(t *testing.T) {
		s, c, _ := setup(2)
		s.markReturned(amqp.Return{MessageId: "b", Body: []byte("b")})
		s.resolve(ack(1, 2), nil)
		if !errors.Is(c.err, ErrUnroutable) {
			t.Fatalf("call err %v, want ErrUnroutable", c.err)
		}
		select {
		case <-s.redeclare:
		default:
			t.Fatal("no redeclaration requested")
		}
	})
	t.Run("nack fails the session and keeps the record", func(t *testing.T) {
		s, c, recs := setup(3)
		s.resolve([]amqp.Confirmation{{DeliveryTag: 1, Ack: true}, {DeliveryTag: 2, Ack: false}}, nil)
		select {
		case <-s.failed:
		default:
			t.Fatal("session not failed by a nack")
		}
		if c.finished() {
			t.Fatal("call finished despite a nack")
		}
		left := s.take()
		if len(left) != 2 || left[0] != recs[1] || left[1] != recs[2] {
			t.Fatalf("records to republish: %v", left)
		}
	})
	t.Run("a lost confirmation fails the session", func(t *testing.T) {
		s, _, _ := setup(3)
		s.resolve(ack(2), nil)
		select {
		case <-s.failed:
		default:
			t.Fatal("session not failed by an out-of-order confirmation")
		}
		if n := len(s.take()); n != 3 {
			t.Fatalf("%d records to republish, want 3", n)
		}
	})
}
