package rabbitmq

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

func init() {
	factory := func(sec *config.Section) (broker.Opener, error) {
		c, err := ParseConfig(sec)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, env broker.Env) (broker.Broker, error) {
			return Open(ctx, c, env.LoggerOrDefault())
		}, nil
	}
	broker.Register("pika", factory) // Rasa's name, and the type of a section without one
	broker.Register("rabbitmq", factory)
}

// Sentinel errors callers branch on.
var (
	// ErrUnroutable fails a Publish whose message RabbitMQ returned because
	// no queue is bound to the exchange. The broker redeclares its queues,
	// so a retry normally succeeds.
	ErrUnroutable = errors.New("rabbitmq: message routed to no queue")
	// ErrNotConnected fails a Publish while RabbitMQ is unreachable: at
	// once with should_keep_unpublished_messages false, else when the
	// context ends before a reconnect.
	ErrNotConnected = errors.New("rabbitmq: not connected")
)

// closeTimeout bounds the AMQP close handshake of a dropped or closed
// connection.
const closeTimeout = 5 * time.Second

// Broker publishes events to a RabbitMQ fanout exchange with publisher
// confirms. It owns one connection and one channel at a time and replaces
// them when they fail, republishing every message RabbitMQ had not
// confirmed.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	tls     *tls.Config
	backoff broker.Backoff

	// seq numbers messages in publish order, so that a backlog gathered
	// from several places is republished in that order.
	seq atomic.Uint64
	// sendSlot is held while sending on the channel: by one Publish call
	// for all its messages (which keeps them in order and together), or by
	// the reconnect loop while it republishes. A channel, not a mutex, so
	// that waiting honours the caller's context.
	sendSlot chan struct{}

	ctx    context.Context // the reconnect loop's lifetime
	cancel context.CancelFunc
	loop   sync.WaitGroup

	mu        sync.Mutex
	cur       *session  // nil while disconnected
	backlog   []*record // waiting for the next session
	compactAt int       // backlog length that triggers dropping abandoned records
	lastErr   error     // why the last connection attempt or session failed
	closing   bool
	warned    map[string]bool

	calls     sync.WaitGroup // Publish calls in flight
	abort     chan struct{}  // closed when Close stops waiting for them
	closeOnce sync.Once
	closeErr  error
}

var (
	_ broker.Broker = (*Broker)(nil)
	_ broker.Pinger = (*Broker)(nil)
)

// Open connects to RabbitMQ, declares the exchange and queues, and starts
// the reconnect loop. It tries c.ConnectionAttempts times, c.RetryDelay
// apart. If every attempt fails it returns the error when c.RaiseOnFailure
// is set, and otherwise a broker that keeps reconnecting in the background
// (Publish waits for it). Errors that retrying cannot fix (refused
// credentials or vhost, bad TLS certificates) fail Open at once.
func Open(ctx context.Context, c Config, log *slog.Logger) (*Broker, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if len(c.Queues) == 0 {
		c.Queues = []string{DefaultQueue}
	}
	if c.VHost == "" {
		c.VHost = "/"
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ConnectionName == "" {
		c.ConnectionName = DefaultConnectionName
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if log == nil {
		log = slog.Default()
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      c,
		log:      log.With("broker", "rabbitmq"),
		tls:      tc,
		backoff:  broker.Backoff{Initial: 100 * time.Millisecond, Max: max(c.RetryDelay, 100*time.Millisecond)},
		sendSlot: make(chan struct{}, 1),
		abort:    make(chan struct{}),
		warned:   map[string]bool{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())

	var lastErr error
	for attempt := 1; ; attempt++ {
		s, err := b.connect(ctx)
		if err == nil {
			b.install(s)
			b.log.Info("rabbitmq event broker ready", "url", c.String(), "exchange", c.Exchange, "queues", c.Queues)
			b.start(s)
			return b, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			b.cancel()
			return nil, fmt.Errorf("rabbitmq: connect to %s: %w", c, err)
		}
		if permanent(err) {
			b.cancel()
			return nil, fmt.Errorf("rabbitmq: connect to %s: %w", c, err)
		}
		if attempt >= c.ConnectionAttempts {
			break
		}
		b.log.Warn("rabbitmq: connect failed, retrying", "url", c.String(), "attempt", attempt, "of", c.ConnectionAttempts, "wait", c.RetryDelay, "err", err)
		if !broker.Sleep(ctx, c.RetryDelay) {
			b.cancel()
			return nil, fmt.Errorf("rabbitmq: connect to %s: %w (last error: %v)", c, ctx.Err(), err)
		}
	}
	if c.RaiseOnFailure {
		b.cancel()
		return nil, fmt.Errorf("rabbitmq: connect to %s: %d attempts failed: %w", c, c.ConnectionAttempts, lastErr)
	}
	b.lastErr = lastErr
	b.log.Error("rabbitmq: cannot connect; reconnecting in the background, publishing waits (set raise_on_failure: true to fail instead)",
		"url", c.String(), "attempts", c.ConnectionAttempts, "err", lastErr)
	b.start(nil)
	return b, nil
}

// permanent reports errors that another attempt would meet again.
func permanent(err error) bool {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused, amqp.NotAllowed, amqp.PreconditionFailed:
			return true
		}
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify)
}

func (b *Broker) start(s *session) {
	b.loop.Add(1)
	go b.run(s)
}

// Publish publishes evs in order and returns when RabbitMQ has confirmed
// every one (persisted to its durable queues). A message RabbitMQ nacks, or
// that is unconfirmed when the connection drops, is republished after
// reconnecting, so Publish never reports an unconfirmed message as
// delivered. While RabbitMQ is unreachable Publish waits for the reconnect
// until ctx ends (or fails at once without should_keep_unpublished_messages).
func (b *Broker) Publish(ctx context.Context, evs ...event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !b.enter() {
		return broker.ErrClosed
	}
	defer b.calls.Done()
	if len(evs) == 0 {
		return nil
	}
	recs := make([]record, len(evs))
	ptrs := make([]*record, len(evs))
	c := newCall(len(evs))
	first := b.seq.Add(uint64(len(evs))) - uint64(len(evs))
	for i, ev := range evs {
		msg, err := b.message(ev)
		if err != nil {
			return err
		}
		recs[i] = record{seq: first + uint64(i), msg: msg, call: c}
		ptrs[i] = &recs[i]
	}
	if err := b.submit(ctx, ptrs); err != nil {
		c.finish(err)
		return c.err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.finish(b.waitError(ctx.Err()))
	case <-b.abort:
		c.finish(fmt.Errorf("rabbitmq: %w before RabbitMQ confirmed the events", broker.ErrClosed))
	}
	return c.err
}

func (b *Broker) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.calls.Add(1)
	return true
}

// EventIDHeader carries the event ID (broker.EventIDHeader).
const EventIDHeader = broker.EventIDHeader

// message builds the AMQP message Rasa sends for ev, plus its ID as
// message_id and in the parley-event-id header for deduplication
// downstream.
func (b *Broker) message(ev event.Event) (amqp.Publishing, error) {
	var body []byte
	if b.cfg.Format == event.FormatRasa {
		body = ev.RasaJSON()
	} else {
		body = ev.AppendJSON(nil, b.cfg.Format)
	}
	if int64(len(body)) > b.cfg.MaxMessageSize {
		return amqp.Publishing{}, broker.Permanent(fmt.Errorf("rabbitmq: event %s of %d bytes is larger than max_message_size %d", ev.ID, len(body), b.cfg.MaxMessageSize))
	}
	// Rasa (aio-pika) always sends a header table, empty on live events,
	// and consumers written for it call properties.headers.get(...).
	// amqp091-go cannot send an empty table, so the event ID goes in as
	// parley-event-id (as on Kafka), which keeps the table present.
	var headers amqp.Table
	if len(ev.Headers) > 0 || ev.ID != "" {
		headers = make(amqp.Table, len(ev.Headers)+1)
		for k, v := range ev.Headers {
			headers[k] = v
		}
		if ev.ID != "" {
			headers[EventIDHeader] = ev.ID
		}
	}
	return amqp.Publishing{
		Headers:      headers,
		DeliveryMode: amqp.Persistent,
		AppId:        b.cfg.AppID,
		MessageId:    ev.ID,
		Body:         body,
	}, nil
}

// submit sends recs, in order, on the current session, or leaves them in
// the backlog for the next one while disconnected.
func (b *Broker) submit(ctx context.Context, recs []*record) error {
	select {
	case b.sendSlot <- struct{}{}:
	case <-ctx.Done():
		return b.waitError(ctx.Err())
	case <-b.abort:
		return fmt.Errorf("rabbitmq: %w", broker.ErrClosed)
	}
	defer func() { <-b.sendSlot }()
	s := b.current()
	for i := 0; i < len(recs); {
		if s == nil {
			// No new session can be installed while this call holds the
			// send slot, so the reconnect loop will find these.
			return b.park(recs[i:])
		}
		if s.paused.Load() {
			if err := s.waitUnpaused(ctx); err != nil {
				return err
			}
		}
		if !s.publish(recs[i]) {
			s = nil // failed: the records wait for the next session
			continue
		}
		i++
	}
	return nil
}

// park queues records for the next session, or fails them when the
// broker must not wait for one.
func (b *Broker) park(recs []*record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.cfg.KeepUnpublished {
		return b.notConnected()
	}
	b.backlog = append(b.backlog, recs...)
	if len(b.backlog) >= b.compactAt {
		// Drop the records of calls whose callers gave up, so that a long
		// outage with retrying callers does not grow the backlog forever.
		b.backlog = slices.DeleteFunc(b.backlog, func(r *record) bool { return r.call.finished() })
		b.compactAt = 2*len(b.backlog) + 1024
	}
	return nil
}

// notConnected describes the outage; b.mu is held.
func (b *Broker) notConnected() error {
	if b.lastErr != nil {
		return fmt.Errorf("%w to %s: %v", ErrNotConnected, b.cfg, b.lastErr)
	}
	return fmt.Errorf("%w to %s", ErrNotConnected, b.cfg)
}

// waitError wraps the error of a context that ended while Publish waited,
// saying what it waited for.
func (b *Broker) waitError(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return fmt.Errorf("rabbitmq: events not confirmed: %w (%w)", err, b.notConnected())
	}
	return fmt.Errorf("rabbitmq: events not confirmed: %w", err)
}

func (b *Broker) current() *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}

// install republishes the backlog on s, in publish order, then makes s
// the session Publish sends on.
func (b *Broker) install(s *session) int {
	select {
	case b.sendSlot <- struct{}{}:
	case <-s.failed:
		return 0
	}
	defer func() { <-b.sendSlot }()
	b.mu.Lock()
	backlog := b.backlog
	b.backlog, b.compactAt = nil, 0
	b.mu.Unlock()
	slices.SortFunc(backlog, func(x, y *record) int { return cmp.Compare(x.seq, y.seq) })
	n := 0
	for i, r := range backlog {
		if r.call.finished() {
			continue
		}
		if !s.publish(r) {
			b.mu.Lock()
			b.backlog = append(backlog[i:], b.backlog...)
			b.mu.Unlock()
			return n
		}
		n++
	}
	b.mu.Lock()
	b.cur = s
	b.mu.Unlock()
	return n
}

// run is the reconnect loop: it watches the session, replaces it when it
// fails, and stops when the broker closes.
func (b *Broker) run(s *session) {
	defer b.loop.Done()
	attempt := 0
	for {
		if s == nil {
			if s = b.reconnect(&attempt); s == nil {
				return
			}
		}
		cause := b.serve(s)
		b.mu.Lock()
		if b.cur == s {
			b.cur = nil
		}
		if cause != nil {
			b.lastErr = cause
		}
		b.mu.Unlock()
		s.fail(cause)
		s.close(closeTimeout)
		recs := s.take()
		if b.ctx.Err() != nil {
			b.drop(recs, fmt.Errorf("rabbitmq: %w", broker.ErrClosed))
			return
		}
		if !b.cfg.KeepUnpublished {
			b.drop(recs, fmt.Errorf("rabbitmq: connection lost before RabbitMQ confirmed the events: %w (should_keep_unpublished_messages is false)", cause))
		} else {
			b.mu.Lock()
			b.backlog = append(b.backlog, recs...)
			b.mu.Unlock()
		}
		unconfirmed := 0
		for _, r := range recs {
			if !r.call.finished() {
				unconfirmed++
			}
		}
		b.log.Warn("rabbitmq: connection lost, reconnecting", "err", cause, "unconfirmed", unconfirmed)
		// A connection that failed soon after it opened (say, each
		// republish is nacked) backs off further; a long-lived one starts
		// over.
		if time.Since(s.connected) > b.backoff.Max {
			attempt = 0
		}
		s = nil
	}
}

// serve waits for s to fail or the broker to close, redeclaring the
// topology when a message came back unroutable.
func (b *Broker) serve(s *session) error {
	for {
		select {
		case e, ok := <-s.connClosed:
			if ok && e != nil {
				return fmt.Errorf("connection closed: %w", e)
			}
			return errors.New("connection closed")
		case e, ok := <-s.chClosed:
			if ok && e != nil {
				return fmt.Errorf("channel closed: %w", e)
			}
			return errors.New("channel closed")
		case <-s.failed:
			return s.failErr
		case <-s.redeclare:
			// In the session's own goroutine: a declaration waits for
			// RabbitMQ's reply, and this loop must keep watching. Closing
			// the connection ends it; s.close waits for it.
			if s.redeclaring.CompareAndSwap(false, true) {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					defer s.redeclaring.Store(false)
					if err := b.declareTopology(s.conn); err != nil {
						b.log.Warn("rabbitmq: redeclaring the queues after an unroutable message failed", "err", err)
					}
				}()
			}
		case <-b.ctx.Done():
			return nil
		}
	}
}

// reconnect connects with backoff until it succeeds (and republishes the
// backlog) or the broker closes.
func (b *Broker) reconnect(attempt *int) *session {
	for {
		*attempt++
		if !broker.Sleep(b.ctx, b.backoff.Delay(*attempt)) {
			return nil
		}
		s, err := b.connect(b.ctx)
		if err != nil {
			if b.ctx.Err() != nil {
				return nil
			}
			b.mu.Lock()
			b.lastErr = err
			waiting := len(b.backlog)
			b.mu.Unlock()
			level := slog.LevelDebug
			if *attempt == 1 || *attempt%10 == 0 {
				level = slog.LevelWarn // an outage is not worth a line per attempt
			}
			b.log.Log(b.ctx, level, "rabbitmq: reconnect failed", "url", b.cfg.String(), "attempt", *attempt, "backlog", waiting, "err", err)
			continue
		}
		n := b.install(s)
		b.log.Info("rabbitmq: reconnected", "url", b.cfg.String(), "attempts", *attempt, "republished", n)
		return s
	}
}

// drop fails the calls of recs.
func (b *Broker) drop(recs []*record, err error) {
	for _, r := range recs {
		r.call.finish(err)
	}
}

// Config returns the broker's configuration.
func (b *Broker) Config() Config { return b.cfg }

// Ping reports whether the connection is open and not blocked, for /ready.
func (b *Broker) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	s, closing := b.cur, b.closing
	var err error
	if s == nil {
		err = b.notConnected()
	}
	b.mu.Unlock()
	switch {
	case closing:
		return broker.ErrClosed
	case err != nil:
		return err
	case s.conn.IsClosed():
		return fmt.Errorf("%w to %s: connection closed", ErrNotConnected, b.cfg)
	}
	if reason := s.pauseReason(); reason != "" {
		return fmt.Errorf("rabbitmq: %s", reason)
	}
	return nil
}

// Close waits for the Publish calls in flight to be confirmed (or ctx to
// end, which fails them with ErrClosed), then closes the channel and the
// connection. It is idempotent.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.mu.Unlock()
		idle := make(chan struct{})
		go func() {
			b.calls.Wait()
			close(idle)
		}()
		select {
		case <-idle:
		case <-ctx.Done():
			b.closeErr = fmt.Errorf("rabbitmq: close: gave up waiting for unconfirmed events: %w", ctx.Err())
			close(b.abort)
			<-idle
		}
		b.cancel()
		b.loop.Wait()
	})
	return b.closeErr
}

// warnOnce logs a warning the first time key comes up and at debug level
// after, for conditions met again on every reconnect.
func (b *Broker) warnOnce(key, msg string, args ...any) {
	b.mu.Lock()
	seen := b.warned[key]
	b.warned[key] = true
	b.mu.Unlock()
	if seen {
		b.log.Debug(msg, args...)
	} else {
		b.log.Warn(msg, args...)
	}
}
