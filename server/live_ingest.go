package server

import (
	"context"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/ui"
)

// liveIngest is the UI's tap on POST /events that keeps the spool's
// idempotent publishing: without it a request with an Idempotency-Key
// would find no IdempotentPublisher behind the tap and be refused. Plain
// publishes go through the tap itself.
type liveIngest struct {
	IdempotentPublisher
	tap    ui.Publisher
	live   *ui.Live
	source string
}

func newLiveIngest(live *ui.Live, p IdempotentPublisher, source string) liveIngest {
	return liveIngest{IdempotentPublisher: p, tap: live.Tap(p, source), live: live, source: source}
}

func (l liveIngest) Publish(ctx context.Context, evs ...event.Event) error {
	return l.tap.Publish(ctx, evs...)
}

func (l liveIngest) PublishIdempotent(ctx context.Context, key string, out idempotency.Outcome, evs ...event.Event) (idempotency.Outcome, bool, error) {
	rec, replayed, err := l.IdempotentPublisher.PublishIdempotent(ctx, key, out, evs...)
	if err == nil && !replayed {
		l.live.Record(l.source, evs...)
	}
	return rec, replayed, err
}
