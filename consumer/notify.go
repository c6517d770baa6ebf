package consumer

import (
	"context"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// NotifyOnPublish returns b, calling src's Notify after every successful
// Publish, so that reads waiting on the SQL source return as soon as the
// events they wait for are committed instead of at the next poll. Wrap the
// SQL broker whose table the source reads. When src is not a Notifier
// (Kafka), b is returned as is.
func NotifyOnPublish(b broker.Broker, src Source) broker.Broker {
	n, ok := src.(Notifier)
	if !ok {
		return b
	}
	if pb, ok := b.(broker.Positioned); ok {
		// Keep the exactly-once streams the spool writes through.
		return &notifyingPositioned{notifying{Broker: b, n: n}, pb}
	}
	return &notifying{Broker: b, n: n}
}

type notifyingPositioned struct {
	notifying
	pb broker.Positioned
}

func (nb *notifyingPositioned) OpenStream(ctx context.Context, id string) (broker.Stream, error) {
	st, err := nb.pb.OpenStream(ctx, id)
	if err != nil {
		return nil, err
	}
	return &notifyingStream{Stream: st, n: nb.n}, nil
}

type notifyingStream struct {
	broker.Stream
	n Notifier
}

func (s *notifyingStream) PublishAt(ctx context.Context, prev, next uint64, evs ...event.Event) error {
	err := s.Stream.PublishAt(ctx, prev, next, evs...)
	if err == nil {
		s.n.Notify()
	}
	return err
}

type notifying struct {
	broker.Broker
	n Notifier
}

func (nb *notifying) Publish(ctx context.Context, evs ...event.Event) error {
	err := nb.Broker.Publish(ctx, evs...)
	if err == nil {
		nb.n.Notify()
	}
	return err
}

// Ping keeps the wrapped broker's readiness check.
func (nb *notifying) Ping(ctx context.Context) error {
	if p, ok := nb.Broker.(broker.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Unwrap returns the wrapped broker.
func (nb *notifying) Unwrap() broker.Broker { return nb.Broker }
