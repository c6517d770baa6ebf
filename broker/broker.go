package broker

import (
	"context"
	"errors"
	"log/slog"

	"github.com/parleyhq/parley/event"
)

// EventIDHeader names the message header that carries an event's ID
// (event.Event.ID) wherever the broker's format has headers (Kafka,
// AMQP), so that consumers can drop the duplicates at-least-once
// delivery can make.
const EventIDHeader = "parley-event-id"

// Broker publishes events to one destination.
type Broker interface {
	// Publish sends evs in order and returns only when the destination
	// holds them durably (committed, acknowledged, fsynced). On error some
	// of evs may have been delivered: callers retry, and event IDs let
	// consumers drop the duplicates. Publish is safe for concurrent use.
	Publish(ctx context.Context, evs ...event.Event) error
	// Close waits for Publish calls in flight, flushes and releases the
	// broker. Publish after Close returns ErrClosed. Close is idempotent.
	Close(ctx context.Context) error
}

// Pinger is implemented by brokers that can check their destination is
// reachable without publishing, for the /ready endpoint.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Env is what parley hands a broker when it opens it.
type Env struct {
	// Logger receives the broker's logs; never nil when set by parley.
	Logger *slog.Logger
}

// LoggerOrDefault returns e.Logger or slog.Default().
func (e Env) LoggerOrDefault() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// Sentinel errors callers branch on.
var (
	// ErrClosed is returned by Publish after Close.
	ErrClosed = errors.New("broker is closed")
	// ErrUnknownType is returned for an event_broker type nobody registered.
	ErrUnknownType = errors.New("unknown event broker type")
	// ErrPermanent marks a failure that retrying cannot fix, such as an
	// event larger than the destination accepts. Delivery sets such events
	// aside instead of retrying them forever.
	ErrPermanent = errors.New("permanent publish failure")
)

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() []error      { return []error{e.err, ErrPermanent} }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }
