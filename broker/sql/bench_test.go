package sql

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
)

// BenchmarkPublish commits batches of 500 fixture events into SQLite (WAL,
// synchronous=FULL); with PARLEY_POSTGRES_DSN set, also into PostgreSQL.
func BenchmarkPublish(b *testing.B) {
	fx, _ := brokertest.FixtureEvents(b)
	evs := make([]event.Event, 500)
	var size int64
	for i := range evs {
		evs[i] = fx[i%len(fx)]
		size += int64(len(evs[i].RasaJSON()))
	}
	run := func(b *testing.B, opts sqldb.Options) {
		br, err := Open(context.Background(), Config{DB: opts, Table: "bench_events"}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			br.DB().Exec("DROP TABLE bench_events")
			br.Close(context.Background())
		}()
		b.SetBytes(size)
		for b.Loop() {
			if err := br.Publish(context.Background(), evs...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("sqlite", func(b *testing.B) {
		run(b, sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(b.TempDir(), "events.db")})
	})
	b.Run("postgres", func(b *testing.B) { run(b, postgresOptions(b)) })
}
