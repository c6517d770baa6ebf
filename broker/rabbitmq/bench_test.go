package rabbitmq

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/testenv"
)

// BenchmarkPublish compares parley's Publish with a bare amqp091-go
// publisher doing the same work: the same messages (Rasa bytes,
// persistent, message_id, mandatory) to a fanout exchange with one durable
// queue, a batch published and then every confirm awaited, from 1 or 8
// concurrent publishers. The two run in alternating rounds, so that load
// from anything else on the machine weighs on both alike; it reports
// parley-msgs/s, raw-msgs/s and their ratio parley/raw. Run:
//
//	go test -run '^$' -bench Publish ./broker/rabbitmq/
func BenchmarkPublish(b *testing.B) {
	url := testenv.Get(b, "PARLEY_AMQP_URL")
	for _, size := range []int{256, 4096} {
		for _, batch := range []int{1, 100} {
			for _, publishers := range []int{1, 8} {
				if batch == 1 && publishers == 1 && size > 256 {
					continue // latency-bound either way: one size says enough
				}
				evs := benchEvents(size, batch)
				b.Run(fmt.Sprintf("size=%d/batch=%d/publishers=%d", size, batch, publishers), func(b *testing.B) {
					br := openBroker(b, testConfig(b, url, 1, nil))
					rc := testConfig(b, url, 1, nil)
					_ = openBroker(b, rc).Close(context.Background()) // declares its topology
					raw := newRawPublisher(b, url, rc.Exchange)
					msgs := make([]amqp.Publishing, len(evs))
					for i, ev := range evs {
						msgs[i] = amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: ev.ID, Body: ev.RasaJSON()}
					}
					impls := [2]func(context.Context) error{
						func(ctx context.Context) error { return br.Publish(ctx, evs...) },
						func(ctx context.Context) error { return raw.publish(ctx, msgs) },
					}
					var took [2]time.Duration
					round := max(4*publishers, 16)
					b.ResetTimer()
					for done, r := 0, 0; done < b.N; done, r = done+round, r+1 {
						n := min(round, b.N-done)
						for k := range 2 {
							i := (k + r) % 2 // alternate which goes first
							took[i] += runPublishers(b, publishers, n, impls[i])
						}
					}
					b.StopTimer()
					total := float64(b.N * batch)
					b.ReportMetric(total/took[0].Seconds(), "parley-msgs/s")
					b.ReportMetric(total/took[1].Seconds(), "raw-msgs/s")
					b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "parley/raw")
				})
			}
		}
	}
}

// runPublishers runs n calls of publish split among publishers goroutines
// and returns how long they took.
func runPublishers(b *testing.B, publishers, n int, publish func(context.Context) error) time.Duration {
	b.Helper()
	var next atomic.Int64
	errs := make(chan error, publishers)
	start := time.Now()
	for range publishers {
		go func() {
			ctx := context.Background()
			for next.Add(1) <= int64(n) {
				if err := publish(ctx); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range publishers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// benchEvents makes n events of about size bytes, holding their Rasa
// bytes as events read back from parley's spool do, so that both sides
// publish ready bodies and the benchmark compares the publishing, not the
// JSON encoding (benchmarked in package event).
func benchEvents(size, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		ev := brokertest.Seq("bench", i)
		pad := size - len(ev.RasaJSON())
		ev = ev.With("text", event.StringValue(strings.Repeat("x", max(pad, 0)+len("message 0"))))
		cached, err := event.FromRasa(ev.ID, ev.RasaJSON())
		if err != nil {
			panic(err)
		}
		evs[i] = cached
	}
	return evs
}

// rawPublisher is what a careful amqp091-go user writes: one channel in
// confirm mode shared by the publishers, a deferred confirmation per
// message, awaited after the batch is sent.
type rawPublisher struct {
	ch       *amqp.Channel
	exchange string
}

func newRawPublisher(b *testing.B, url, exchange string) *rawPublisher {
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	return &rawPublisher{ch: ch, exchange: exchange}
}

func (p *rawPublisher) publish(ctx context.Context, msgs []amqp.Publishing) error {
	dcs := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, m := range msgs {
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, p.exchange, "", true, false, m)
		if err != nil {
			return err
		}
		dcs[i] = dc
	}
	for _, dc := range dcs {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("nacked")
		}
	}
	return nil
}
