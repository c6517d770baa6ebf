package kafka

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/event"
)

// benchBatch is the events per Publish call in the batch benchmarks, what
// `parley publish` and the spool send.
const benchBatch = 500

// benchEvents returns n events (about 300 bytes each in Rasa's format)
// spread over 50 senders, made as the spool hands them over: from their
// Rasa bytes, with an ID.
func benchEvents(b *testing.B, n int) []event.Event {
	fx := fixtureEvents(b)
	evs := make([]event.Event, n)
	for i := range evs {
		ev := fx[i%len(fx)]
		ev.SenderID = fmt.Sprintf("conversation-%02d", i%50)
		var err error
		if evs[i], err = event.FromRasa(fmt.Sprintf("bench-%08d", i), ev.RasaJSON()); err != nil {
			b.Fatal(err)
		}
	}
	return evs
}

// runPublishers calls publish with batches of size from workers
// goroutines until b.N events are sent, and reports events per second.
func runPublishers(b *testing.B, workers, size int, publish func(ctx context.Context, evs []event.Event) error) {
	evs := benchEvents(b, size*workers)
	var sent atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	ctx := context.Background()
	// Warm up: learn the topic's metadata and connect to its leaders.
	if err := publish(ctx, evs[:size]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := evs[w*size : (w+1)*size]
			for sent.Add(int64(size)) <= int64(b.N)+int64(size)-1 {
				if err := publish(ctx, mine); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkPublish measures Publish against kfake, which acknowledges
// without storing (BlackholeProduce), so the numbers are parley's and
// franz-go's own cost: 1 event per call from 64 concurrent callers (live
// traffic, one event per conversation turn) and batches of 500 from one
// and from 4 callers.
func BenchmarkPublish(b *testing.B) {
	fake := newFake(b, kfake.BlackholeProduce(), kfake.SeedTopics(3, "bench"))
	for _, linger := range []time.Duration{0, 5 * time.Millisecond} {
		for _, shape := range []struct{ workers, size int }{{64, 1}, {1, benchBatch}, {4, benchBatch}} {
			b.Run(fmt.Sprintf("parley/linger=%v/callers=%d/batch=%d", linger, shape.workers, shape.size), func(b *testing.B) {
				br, err := Open(context.Background(), Config{Seeds: fake.ListenAddrs(), Topic: "bench", Linger: linger, PartitionBySender: true}, quietLogger(b))
				if err != nil {
					b.Fatal(err)
				}
				defer br.Close(context.Background())
				runPublishers(b, shape.workers, shape.size, func(ctx context.Context, evs []event.Event) error {
					return br.Publish(ctx, evs...)
				})
			})
			b.Run(fmt.Sprintf("raw/linger=%v/callers=%d/batch=%d", linger, shape.workers, shape.size), func(b *testing.B) {
				benchRaw(b, []kgo.Opt{kgo.SeedBrokers(fake.ListenAddrs()...)}, "bench", linger, shape.workers, shape.size)
			})
		}
	}
}

// BenchmarkPublishKafka compares parley's Publish with a raw franz-go
// producer on the real Kafka: same acks (all, idempotent), same linger,
// no compression, the same record values, keys and headers, produced with
// ProduceSync. The raw producer is handed ready-made records; parley makes
// them from the events. Both run in alternation, three rounds, so that a
// busy machine slows both alike: compare the medians.
func BenchmarkPublishKafka(b *testing.B) {
	tg := kafkaTarget(b)
	for round := 0; round < 3; round++ {
		for _, linger := range []time.Duration{0, 5 * time.Millisecond} {
			for _, shape := range []struct{ workers, size int }{{1, benchBatch}, {4, benchBatch}, {64, 1}} {
				name := fmt.Sprintf("linger=%v/callers=%d/batch=%d", linger, shape.workers, shape.size)
				b.Run("parley/"+name, func(b *testing.B) {
					br, _ := tg.open(b, 3, func(c *Config) { c.Linger, c.PartitionBySender = linger, true })
					runPublishers(b, shape.workers, shape.size, func(ctx context.Context, evs []event.Event) error {
						return br.Publish(ctx, evs...)
					})
				})
				b.Run("raw/"+name, func(b *testing.B) {
					topic := newTopicName("raw")
					createTopic(b, tg.opts, topic, 3)
					deleteTopic(b, tg.opts, topic)
					benchRaw(b, tg.opts, topic, linger, shape.workers, shape.size)
				})
			}
		}
	}
}

// benchRaw is the baseline: a franz-go producer with the acks, linger and
// compression parley uses, producing ready-made records with the same
// values, keys and headers through ProduceSync.
func benchRaw(b *testing.B, opts []kgo.Opt, topic string, linger time.Duration, workers, size int) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	recsOf := map[*event.Event][]*kgo.Record{}
	var mu sync.Mutex
	runPublishers(b, workers, size, func(ctx context.Context, evs []event.Event) error {
		mu.Lock()
		recs, ok := recsOf[&evs[0]]
		if !ok {
			for i := range evs {
				recs = append(recs, &kgo.Record{Key: []byte(evs[i].SenderID), Value: evs[i].RasaJSON(), Headers: []kgo.RecordHeader{
					{Key: HeaderRasaEnvironment, Value: []byte(RasaEnvironmentNotSet)},
					{Key: HeaderEventID, Value: []byte(evs[i].ID)},
				}})
			}
			recsOf[&evs[0]] = recs
		}
		mu.Unlock()
		// Fresh records each call: franz-go owns them until acked.
		batch := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			batch[i] = &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
		return cl.ProduceSync(ctx, batch...).FirstErr()
	})
}
