package spool

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

// discard confirms everything at once, so benchmarks measure the spool.
type discard struct{ n atomic.Int64 }

func (d *discard) Publish(_ context.Context, evs ...event.Event) error {
	d.n.Add(int64(len(evs)))
	return nil
}
func (d *discard) Close(context.Context) error { return nil }

func benchEvents(b *testing.B) ([]event.Event, int64) {
	evs := fixtureEvents(b)
	var size int64
	for _, ev := range evs {
		size += int64(len(ev.RasaJSON()))
	}
	return evs, size / int64(len(evs))
}

// BenchmarkAppend measures Append of one fixture event per call: serial
// (latency) and from many goroutines (group-commit throughput).
func BenchmarkAppend(b *testing.B) {
	evs, avg := benchEvents(b)
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		for _, parallel := range []bool{false, true} {
			name := policy.String() + "/serial"
			if parallel {
				name = policy.String() + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				cfg := Config{Dir: b.TempDir(), Fsync: policy}
				s := openT(b, cfg, named("discard", &discard{}))
				b.SetBytes(avg)
				b.ResetTimer()
				start := time.Now()
				if parallel {
					b.SetParallelism(32)
					b.RunParallel(func(pb *testing.PB) {
						i := 0
						for pb.Next() {
							ev := evs[i%len(evs)]
							ev.ID = ""
							if err := s.Publish(context.Background(), ev); err != nil {
								b.Error(err)
								return
							}
							i++
						}
					})
				} else {
					for i := 0; b.Loop(); i++ {
						ev := evs[i%len(evs)]
						ev.ID = ""
						if err := s.Publish(context.Background(), ev); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkEndToEnd measures events from Publish (batches of 100 from 4
// goroutines) to confirmation by an in-memory broker.
func BenchmarkEndToEnd(b *testing.B) {
	evs, avg := benchEvents(b)
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncNever} {
		b.Run(policy.String(), func(b *testing.B) {
			rec := brokertest.NewRecorder()
			s := openT(b, Config{Dir: b.TempDir(), Fsync: policy}, named("rec", rec))
			b.SetBytes(avg)
			b.ResetTimer()
			start := time.Now()
			const batch = 100
			var sent atomic.Int64
			b.SetParallelism(2) // 2 x GOMAXPROCS publishers
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]event.Event, 0, batch)
				flush := func() {
					if len(buf) == 0 {
						return
					}
					if err := s.Publish(context.Background(), buf...); err != nil {
						b.Error(err)
					}
					sent.Add(int64(len(buf)))
					buf = buf[:0]
				}
				i := 0
				for pb.Next() {
					ev := evs[i%len(evs)]
					ev.ID = ""
					buf = append(buf, ev)
					if len(buf) == batch {
						flush()
					}
					i++
				}
				flush()
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if got := len(rec.Wait(ctx, int(sent.Load()))); got < b.N {
				b.Fatalf("delivered %d of %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkOpenBacklog measures Open of a spool holding a 256 MiB backlog
// (four full segments and a partial one, in the page cache): start-up
// reads every segment for its idempotency keys.
func BenchmarkOpenBacklog(b *testing.B) {
	dir := b.TempDir()
	cfg := Config{Dir: dir, Fsync: FsyncNever, MaxSize: 2 << 30}
	s := openT(b, cfg, named("down", newGate(false)))
	evs := fixtureEvents(b)
	batch := make([]event.Event, 0, 500)
	for len(batch) < 500 {
		batch = append(batch, evs...)
	}
	for s.Status().Bytes < 256<<20 {
		for i := range batch {
			batch[i].ID = ""
		}
		publishT(b, s, batch...)
	}
	_ = closeT(b, s, time.Millisecond)
	b.SetBytes(s.Status().Bytes)
	b.ResetTimer()
	for b.Loop() {
		s := openT(b, cfg, named("down", newGate(false)))
		b.StopTimer()
		_ = closeT(b, s, time.Millisecond)
		b.StartTimer()
	}
}
