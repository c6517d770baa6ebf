package privacy_test

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/bench"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/privacy"
)

// BenchmarkAnonymize measures the rules alone on the benchmark's events,
// handed over as the spool does (bytes, parsed only if read).
func BenchmarkAnonymize(b *testing.B) {
	evs, err := bench.Events(500, 50)
	if err != nil {
		b.Fatal(err)
	}
	a, err := privacy.New(typicalConfig(b), privacy.Env{})
	if err != nil {
		b.Fatal(err)
	}
	w := a.Broker(a.Config().Set(0), nil)
	ctx := context.Background()
	var bytes int64
	for _, ev := range evs {
		bytes += int64(len(ev.RasaJSON()))
	}
	// The rules alone: events already handed over (those the prefilter
	// lets by stay unparsed, as in the first run).
	b.Run("rules only", func(b *testing.B) {
		batch := make([]event.Event, len(evs))
		for i, ev := range evs {
			batch[i] = event.FromRasaTrusted(ev.ID, ev.SenderID, ev.RasaJSON())
		}
		b.SetBytes(bytes)
		for b.Loop() {
			if _, err := w.Anonymize(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
	for _, rules := range []bool{false, true} {
		name := "spooled events only"
		if rules {
			name = "spooled events anonymized"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(bytes)
			for b.Loop() {
				batch := make([]event.Event, len(evs))
				for i, ev := range evs {
					batch[i] = event.FromRasaTrusted(ev.ID, ev.SenderID, ev.RasaJSON())
				}
				if rules {
					if _, err := w.Anonymize(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
		})
	}
}
