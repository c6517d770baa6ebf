package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
)

// testLogger logs through t until the test ends (logging after that
// panics), so that a failing test shows what the broker did.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// uniqueName makes an exchange or queue name no other test run uses.
func uniqueName(t testing.TB, suffix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.Trim(nonName.ReplaceAllString(t.Name(), "-"), "-")
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	return fmt.Sprintf("parley-test.%s.%s.%s", name, hex.EncodeToString(b[:]), suffix)
}

// admin is a plain amqp091 connection for setting up, reading and deleting
// test topology.
type admin struct {
	t    testing.TB
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newAdmin(t testing.TB, url string) *admin {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("admin connection to %s: %v", config.RedactURL(url), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("admin channel: %v", err)
	}
	a := &admin{t: t, conn: conn, ch: ch}
	t.Cleanup(func() { _ = conn.Close() })
	return a
}

// cleanup deletes the exchange and queues when the test ends, on a
// connection of its own (the test's may be gone).
func cleanup(t testing.TB, url, exchange string, queues ...string) {
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		for _, q := range queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Logf("cleanup: delete queue %s: %v", q, err)
				return
			}
		}
		if exchange != "" {
			if err := ch.ExchangeDelete(exchange, false, false); err != nil {
				t.Logf("cleanup: delete exchange %s: %v", exchange, err)
			}
		}
	})
}

// testConfig resolves a section for url (credentials in the URL) with a
// fresh exchange and queues, deleted when the test ends.
func testConfig(t testing.TB, url string, nQueues int, extra map[string]any) Config {
	t.Helper()
	values := map[string]any{
		"type":                   "pika",
		"url":                    url,
		"exchange_name":          uniqueName(t, "x"),
		"retry_delay_in_seconds": 0.2,
	}
	var queues []string
	for i := range nQueues {
		queues = append(queues, uniqueName(t, fmt.Sprintf("q%d", i)))
	}
	values["queues"] = queues
	for k, v := range extra {
		values[k] = v
	}
	c, err := ParseConfig(config.NewSection("test.yml", "event_broker", values))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	cleanup(t, url, c.Exchange, c.Queues...)
	return c
}

func openBroker(t testing.TB, c Config) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, c, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// reader consumes a queue and keeps every message it saw, so that
// successive reads return everything that arrived so far.
type reader struct {
	url, queue string
	mu         sync.Mutex
	msgs       []amqp.Delivery
}

// read waits until at least n messages arrived in total, then until the
// queue is empty, and returns them all.
func (r *reader) read(ctx context.Context, n int) ([]amqp.Delivery, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	conn, err := amqp.Dial(r.url)
	if err != nil {
		return r.msgs, err
	}
	defer conn.Close()
	peek, err := conn.Channel()
	if err != nil {
		return r.msgs, err
	}
	for {
		enough, err := r.consume(ctx, conn, n)
		if err != nil || !enough {
			return r.msgs, err
		}
		// Every message delivered before the consumer was cancelled is in
		// r.msgs: stop when none is left (more would be duplicates).
		q, err := peek.QueueDeclarePassive(r.queue, true, false, false, false, nil)
		if err != nil || q.Messages == 0 {
			return r.msgs, err
		}
	}
}

// consume consumes (auto-ack) until r holds n messages and the queue
// looks drained, or ctx ends; then it cancels the consumer and takes every
// message RabbitMQ delivered before the cancellation.
func (r *reader) consume(ctx context.Context, conn *amqp.Connection, n int) (enough bool, err error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	defer ch.Close()
	peek, err := conn.Channel()
	if err != nil {
		return false, err
	}
	defer peek.Close()
	if err := ch.Qos(2000, 0, false); err != nil {
		return false, err
	}
	const tag = "parley-test-reader"
	deliveries, err := ch.Consume(r.queue, tag, true, false, false, false, nil)
	if err != nil {
		return false, err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for enough = false; !enough; {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return false, errors.New("consumer closed")
			}
			r.msgs = append(r.msgs, d)
			continue
		case <-ctx.Done():
		case <-tick.C:
			if len(r.msgs) < n {
				continue
			}
			q, err := peek.QueueDeclarePassive(r.queue, true, false, false, false, nil)
			if err != nil {
				return false, err
			}
			if q.Messages > 0 {
				continue
			}
			enough = true
		}
		if err := ch.Cancel(tag, false); err != nil {
			return false, err
		}
		for d := range deliveries {
			r.msgs = append(r.msgs, d)
		}
		if !enough {
			return false, nil // ctx ended: what arrived so far
		}
	}
	return true, nil
}

// destination reads r as brokertest messages.
func (r *reader) destination(ctx context.Context, n int) ([]brokertest.Message, error) {
	ds, err := r.read(ctx, n)
	out := make([]brokertest.Message, len(ds))
	for i, d := range ds {
		out[i] = brokertest.Message{Body: d.Body, ID: d.MessageId, Headers: headerStrings(d.Headers)}
	}
	return out, err
}

func headerStrings(t amqp.Table) map[string]string {
	if t == nil {
		return nil
	}
	m := make(map[string]string, len(t))
	for k, v := range t {
		m[k] = fmt.Sprint(v)
	}
	return m
}

// proxy is a TCP proxy in front of RabbitMQ that a test can take down and
// bring back, to cut connections without restarting RabbitMQ.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	up     bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string, up bool) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, up: up, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.setUp(false)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if !p.up {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// setUp brings the proxy up or down; down also cuts every connection.
func (p *proxy) setUp(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for c := range p.conns {
			c.Close()
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
