package rabbitmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Buffers of the notification channels amqp091 writes to. Its reader
// goroutine waits at most 5s for a full listener and then drops the
// notification, so the listeners are drained at once and sized for bursts;
// a dropped confirmation is still caught (see resolve).
const (
	confirmBuffer = 4096
	returnBuffer  = 256
)

// errNacked fails a session when RabbitMQ nacks a message: the connection
// is replaced and the message republished, in order, on the new one.
var errNacked = errors.New("RabbitMQ nacked a message (internal error or queue overflow)")

// A session is one connection and its publishing channel in confirm mode.
// It lives until the first failure; the broker then replaces it.
type session struct {
	b    *Broker
	conn *amqp.Connection
	ch   *amqp.Channel

	connClosed  chan *amqp.Error
	chClosed    chan *amqp.Error
	confirms    chan amqp.Confirmation
	returns     chan amqp.Return
	blockings   chan amqp.Blocking
	flows       chan bool
	redeclare   chan struct{} // a message came back unroutable
	redeclaring atomic.Bool   // a redeclaration is running
	wg          sync.WaitGroup

	mu       sync.Mutex
	dead     bool      // no more sends: the session failed
	nextTag  uint64    // delivery tag of the last message sent
	inflight fifo      // sent, not yet confirmed, in tag order
	nacked   []*record // to republish on the next session

	failOnce sync.Once
	failed   chan struct{} // closed by fail
	failErr  error

	paused    atomic.Bool // connection blocked or channel flow stopped
	pauseMu   sync.Mutex
	blocked   string        // connection.blocked reason, "" when unblocked
	flowOff   bool          // channel.flow active=false
	unpaused  chan struct{} // closed while not paused
	connected time.Time
}

// connect dials RabbitMQ, declares the topology and opens the publishing
// channel in confirm mode. ctx bounds the whole attempt.
func (b *Broker) connect(ctx context.Context) (*session, error) {
	conn, err := b.cfg.dial(ctx, b.tls)
	if err != nil {
		return nil, err
	}
	// amqp091's calls take no context: closing the connection is how ctx
	// aborts a declaration waiting for its reply.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	s := &session{
		b:          b,
		conn:       conn,
		connClosed: conn.NotifyClose(make(chan *amqp.Error, 1)),
		blockings:  conn.NotifyBlocked(make(chan amqp.Blocking, 8)),
		redeclare:  make(chan struct{}, 1),
		failed:     make(chan struct{}),
		unpaused:   make(chan struct{}),
		connected:  time.Now(),
	}
	close(s.unpaused)
	fail := func(err error) (*session, error) {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := b.declareTopology(conn); err != nil {
		return fail(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fail(fmt.Errorf("open channel: %w", err))
	}
	if err := ch.Confirm(false); err != nil {
		return fail(fmt.Errorf("enable publisher confirms: %w", err))
	}
	s.ch = ch
	s.chClosed = ch.NotifyClose(make(chan *amqp.Error, 1))
	s.confirms = ch.NotifyPublish(make(chan amqp.Confirmation, confirmBuffer))
	s.returns = ch.NotifyReturn(make(chan amqp.Return, returnBuffer))
	s.flows = ch.NotifyFlow(make(chan bool, 8))
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	s.wg.Add(2)
	go s.dispatch()
	go s.watchFlow()
	return s, nil
}

// dialer connects with ctx and bounds the TLS and AMQP handshakes by
// timeout; amqp091 clears the deadline once the connection is open.
func dialer(ctx context.Context, timeout time.Duration) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		deadline := time.Now().Add(timeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if err := conn.SetDeadline(deadline); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// declareTopology declares the exchange and queues as Rasa does, on a
// channel of its own so that a refused declaration cannot close the
// publishing channel. An exchange or queue that already exists with other
// properties (durable, a quorum queue, arguments) is used as it is.
func (b *Broker) declareTopology(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer func() { _ = ch.Close() }()
	// ensure runs declare; when RabbitMQ refuses it because the entity
	// exists with other properties (which closes the channel), it checks
	// on a new channel that the entity exists and carries on.
	ensure := func(what string, declare, passive func(*amqp.Channel) error) error {
		derr := declare(ch)
		if derr == nil {
			return nil
		}
		if !isCode(derr, amqp.PreconditionFailed) {
			return fmt.Errorf("declare %s: %w", what, derr)
		}
		var err error
		if ch, err = conn.Channel(); err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		if err := passive(ch); err != nil {
			return fmt.Errorf("declare %s: %w", what, err)
		}
		b.warnOnce(what, "rabbitmq: "+what+" exists with other properties than Rasa declares; using it as it is", "detail", derr.Error())
		return nil
	}
	ex := b.cfg.Exchange
	// aio-pika's defaults under Rasa: fanout, durable=False, auto_delete=False.
	err = ensure(fmt.Sprintf("exchange %q", ex),
		func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare(ex, amqp.ExchangeFanout, false, false, false, false, nil)
		},
		func(ch *amqp.Channel) error {
			return ch.ExchangeDeclarePassive(ex, amqp.ExchangeFanout, false, false, false, false, nil)
		})
	if err != nil {
		return err
	}
	for _, q := range b.cfg.Queues {
		err := ensure(fmt.Sprintf("queue %q", q),
			func(ch *amqp.Channel) error { _, err := ch.QueueDeclare(q, true, false, false, false, nil); return err },
			func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
				return err
			})
		if err != nil {
			return err
		}
		if err := ch.QueueBind(q, "", ex, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to exchange %q: %w", q, ex, err)
		}
	}
	return nil
}

func isCode(err error, code int) bool {
	var e *amqp.Error
	return errors.As(err, &e) && e.Code == code
}

// publish sends r on the session. It returns false, without taking r,
// when the session has failed. Once taken, r is either confirmed or handed
// back to the broker when the session ends. Only the holder of the
// broker's send slot calls publish, so delivery tags follow the order of
// the in-flight queue.
func (s *session) publish(r *record) bool {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return false
	}
	s.nextTag++
	r.tag, r.returned = s.nextTag, false
	s.inflight.push(r)
	s.mu.Unlock()
	// mandatory, as aio-pika under Rasa: an unroutable message comes back
	// instead of vanishing.
	if err := s.ch.Publish(s.b.cfg.Exchange, "", true, false, r.msg); err != nil {
		s.fail(fmt.Errorf("publish: %w", err))
	}
	return true
}

// fail ends the session; the broker tears it down and reconnects.
func (s *session) fail(err error) {
	s.failOnce.Do(func() {
		s.mu.Lock()
		s.dead = true
		s.failErr = err
		s.mu.Unlock()
		close(s.failed)
	})
}

// dispatch matches confirmations and returns to the in-flight records
// until the channel closes. It never blocks on anything but its inputs, as
// amqp091's reader waits on it.
func (s *session) dispatch() {
	defer s.wg.Done()
	batch := make([]amqp.Confirmation, 0, 512)
	var done []*record
	returns := s.returns
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			s.markReturned(r)
		case c, ok := <-s.confirms:
			if !ok {
				s.fail(errors.New("channel closed"))
				return
			}
			batch = append(batch[:0], c)
			open := true
		more:
			for len(batch) < cap(batch) {
				select {
				case c, ok := <-s.confirms:
					if !ok {
						open = false
						break more
					}
					batch = append(batch, c)
				default:
					break more
				}
			}
			// A message's basic.return precedes its basic.ack, so every
			// return for this batch is in the channel by now.
			for returns != nil {
				select {
				case r, ok := <-returns:
					if !ok {
						returns = nil
						continue
					}
					s.markReturned(r)
					continue
				default:
				}
				break
			}
			done = s.resolve(batch, done[:0])
			clear(done)
			if !open {
				s.fail(errors.New("channel closed"))
				return
			}
		}
	}
}

// resolve completes the records confirmed by batch.
func (s *session) resolve(batch []amqp.Confirmation, done []*record) []*record {
	var failErr error
	unroutable := false
	s.mu.Lock()
	for _, c := range batch {
		r := s.inflight.peek()
		if r == nil || r.tag != c.DeliveryTag {
			// A confirmation got lost (amqp091 drops one after waiting 5s
			// for a listener): nothing after it can be matched, so the
			// session is replaced and the unmatched records republished.
			var head uint64
			if r != nil {
				head = r.tag
			}
			failErr = fmt.Errorf("confirmation for delivery tag %d, expected %d", c.DeliveryTag, head)
			break
		}
		s.inflight.pop()
		switch {
		case !c.Ack:
			s.nacked = append(s.nacked, r)
			failErr = errNacked
		default:
			done = append(done, r)
		}
	}
	s.mu.Unlock()
	for _, r := range done {
		if r.returned {
			unroutable = true
			r.call.finish(fmt.Errorf("%w: exchange %q has no queue bound (queues deleted?); it is redeclared for the next attempt", ErrUnroutable, s.b.cfg.Exchange))
			continue
		}
		r.call.ack()
	}
	if unroutable {
		select {
		case s.redeclare <- struct{}{}:
		default:
		}
	}
	if failErr != nil {
		s.fail(failErr)
	}
	return done
}

// markReturned flags the in-flight record that RabbitMQ returned. Returns
// carry no delivery tag; they come in publish order, so the first
// unflagged record with the same message ID and body is the one.
func (s *session) markReturned(ret amqp.Return) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.inflight.all() {
		if !r.returned && r.msg.MessageId == ret.MessageId && bytes.Equal(r.msg.Body, ret.Body) {
			r.returned = true
			return
		}
	}
	s.b.log.Warn("rabbitmq: returned message matches no message in flight", "message_id", ret.MessageId, "reply", ret.ReplyText)
}

// watchFlow follows connection.blocked (RabbitMQ's memory and disk alarms)
// and channel.flow, so that senders wait instead of piling into a socket
// RabbitMQ no longer reads.
func (s *session) watchFlow() {
	defer s.wg.Done()
	blockings, flows := s.blockings, s.flows
	for blockings != nil || flows != nil {
		select {
		case bl, ok := <-blockings:
			if !ok {
				blockings = nil
				continue
			}
			reason := ""
			if bl.Active {
				reason = bl.Reason
				if reason == "" {
					reason = "no reason given"
				}
				s.b.log.Warn("rabbitmq: connection blocked by RabbitMQ; publishing waits", "reason", reason)
			} else {
				s.b.log.Info("rabbitmq: connection unblocked")
			}
			s.setPause(func() { s.blocked = reason })
		case active, ok := <-flows:
			if !ok {
				flows = nil
				continue
			}
			s.setPause(func() { s.flowOff = !active })
		}
	}
}

func (s *session) setPause(change func()) {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	was := s.blocked != "" || s.flowOff
	change()
	now := s.blocked != "" || s.flowOff
	switch {
	case now && !was:
		s.unpaused = make(chan struct{})
	case !now && was:
		close(s.unpaused)
	}
	s.paused.Store(now)
}

// pauseReason says why sending is paused ("" when it is not).
func (s *session) pauseReason() string {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	switch {
	case s.blocked != "":
		return "connection blocked by RabbitMQ: " + s.blocked
	case s.flowOff:
		return "channel flow stopped by RabbitMQ"
	}
	return ""
}

// waitUnpaused waits until sending may go on or the session fails.
func (s *session) waitUnpaused(ctx context.Context) error {
	s.pauseMu.Lock()
	ch := s.unpaused
	s.pauseMu.Unlock()
	select {
	case <-ch:
		return nil
	case <-s.failed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: %s: %w", s.pauseReason(), ctx.Err())
	}
}

// close closes the connection (if still open) and waits for the session's
// goroutines, which end when amqp091 closes their channels.
func (s *session) close(timeout time.Duration) {
	_ = s.conn.CloseDeadline(time.Now().Add(timeout))
	s.wg.Wait()
}

// take returns the records the session did not get confirmed, for
// republishing; call it after close.
func (s *session) take() []*record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append(s.nacked, s.inflight.take()...)
	s.nacked = nil
	return out
}
