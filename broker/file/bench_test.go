package file

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// BenchmarkPublish appends batches of 500 fixture events, fsynced.
func BenchmarkPublish(b *testing.B) {
	fx, _ := brokertest.FixtureEvents(b)
	evs := make([]event.Event, 500)
	var size int64
	for i := range evs {
		evs[i] = fx[i%len(fx)]
		size += int64(len(evs[i].RasaJSON()) + 1)
	}
	br, err := Open(Config{Path: filepath.Join(b.TempDir(), "events.log")}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close(context.Background())
	b.SetBytes(size)
	for b.Loop() {
		if err := br.Publish(context.Background(), evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
