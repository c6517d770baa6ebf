package privacy_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/parleyhq/parley/bench"
	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/privacy"
	"github.com/parleyhq/parley/spool"
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

// BenchmarkHoldLatency measures what the hold adds to delivery: the time
// from a turn's first event being accepted (at an idle spool) until the
// broker has the whole turn, posted event by event, with the spool's
// default linger and with privacy's default hold.
func BenchmarkHoldLatency(b *testing.B) {
	for _, hold := range []time.Duration{spool.DefaultDeliveryLinger, privacy.DefaultHold} {
		b.Run("linger="+hold.String(), func(b *testing.B) {
			cfg, err := spool.ParseConfig(nil)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Dir, cfg.DeliveryLinger = b.TempDir(), hold
			rec := brokertest.NewRecorder()
			a, err := privacy.New(typicalConfig(b), privacy.Env{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			sp, err := spool.Open(ctx, cfg, a.Wrap([]broker.Named{{Name: "rec", Broker: rec}}), spool.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close(ctx)
			turn := func(s string) []event.Event {
				var out []event.Event
				for _, l := range []string{
					`{"sender_id":"` + s + `","event":"user","text":"my card is 4111 1111 1111 1111"}`,
					`{"sender_id":"` + s + `","event":"slot","name":"credit_card_number","value":"4111 1111 1111 1111"}`,
					`{"sender_id":"` + s + `","event":"action","name":"action_listen"}`,
				} {
					ev, _ := event.Parse([]byte(l))
					out = append(out, ev)
				}
				return out
			}
			n := 0
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				for _, ev := range turn(fmt.Sprint("h", n)) {
					if err := sp.Publish(ctx, ev); err != nil {
						b.Fatal(err)
					}
				}
				n += 3
				rec.Wait(ctx, n)
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/turn")
		})
	}
}
