package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// PublishOptions shape a publish benchmark.
type PublishOptions struct {
	// Batch is the number of events per Publish call (default 500).
	Batch int
	// Concurrency is the number of publishing goroutines (default 4).
	Concurrency int
	// Progress, if set, is told of each batch published (its size).
	Progress func(n int)
}

func (o *PublishOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
}

// PublishFunc publishes one batch and returns once it is durable. The
// broker benchmark and the raw-client baselines both fit it.
type PublishFunc func(ctx context.Context, evs []event.Event) error

// BrokerFunc adapts a broker.
func BrokerFunc(b broker.Broker) PublishFunc {
	return func(ctx context.Context, evs []event.Event) error { return b.Publish(ctx, evs...) }
}

// Publish splits evs into batches, publishes them from Concurrency
// goroutines and measures throughput and per-call latency. Goroutine g
// takes batches g, g+C, ... so each sees a realistic mix of senders.
func Publish(ctx context.Context, name string, evs []event.Event, publish PublishFunc, o PublishOptions) (Result, error) {
	o.defaults()
	var batches [][]event.Event
	var bytes int64
	for i := 0; i < len(evs); i += o.Batch {
		batches = append(batches, evs[i:min(i+o.Batch, len(evs))])
	}
	for _, ev := range evs {
		bytes += int64(len(ev.RasaJSON()))
	}
	var (
		lat      Latencies
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	for g := 0; g < o.Concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(batches) && ctx.Err() == nil; i += o.Concurrency {
				t0 := time.Now()
				if err := publish(ctx, batches[i]); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", name, err); cancel() })
					return
				}
				lat.Add(time.Since(t0))
				if o.Progress != nil {
					o.Progress(len(batches[i]))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Result{}, firstErr
	}
	s := lat.Summary()
	return Result{Name: name, Events: len(evs), Bytes: bytes, Duration: elapsed, Latency: &s}, nil
}
