package server

import (
	"context"

	"github.com/parleyhq/parley/event"
)

type publisherFunc func(ctx context.Context, evs ...event.Event) error

func (f publisherFunc) Publish(ctx context.Context, evs ...event.Event) error {
	return f(ctx, evs...)
}
