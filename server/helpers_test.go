package server

import (
	"context"
	"sync/atomic"

	"github.com/parleyhq/parley/event"
)

var pubCalls atomic.Int64

type publisherFunc func(ctx context.Context, evs ...event.Event) error

func (f publisherFunc) Publish(ctx context.Context, evs ...event.Event) error {
	pubCalls.Add(1)
	return f(ctx, evs...)
}
