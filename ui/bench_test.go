package ui

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// BenchmarkLiveTap is what the live tail adds to each accepted event
// (docs/benchmarks.md#web-ui): Publish through the tap, around a
// publisher that does nothing, against that publisher alone.
func BenchmarkLiveTap(b *testing.B) {
	var evs []event.Event
	for _, line := range fixtures.Events() {
		ev, err := event.Parse(line)
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, ev)
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		pub  Publisher
	}{
		{"direct", nopPublisher{}},
		{"tap", NewLive(0).Tap(nopPublisher{}, "events")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.pub.Publish(ctx, evs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
