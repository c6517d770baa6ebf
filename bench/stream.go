package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// StreamFunc publishes through n streams of an exactly-once broker, as n
// spools' delivery workers would: each batch goes with its position, one
// batch at a time per stream. Concurrent calls take different streams, so
// n must be at least the benchmark's concurrency. Stream ids start with
// prefix, unique per run. The returned close function closes the streams.
func StreamFunc(ctx context.Context, pb broker.Positioned, prefix string, n int) (PublishFunc, func(), error) {
	type handle struct {
		st  broker.Stream
		pos uint64
	}
	pool := make(chan *handle, n)
	var all []*handle
	closeAll := func() {
		for _, h := range all {
			_ = h.st.Close(context.WithoutCancel(ctx))
		}
	}
	for i := 0; i < n; i++ {
		st, err := pb.OpenStream(ctx, fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), i))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		h := &handle{st: st}
		all = append(all, h)
		if h.pos, err = st.Position(ctx); err != nil {
			closeAll()
			return nil, nil, err
		}
		pool <- h
	}
	return func(ctx context.Context, evs []event.Event) error {
		var h *handle
		select {
		case h = <-pool:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { pool <- h }()
		next := h.pos + uint64(len(evs))
		if err := h.st.PublishAt(ctx, h.pos, next, evs...); err != nil {
			return err
		}
		h.pos = next
		return nil
	}, closeAll, nil
}
