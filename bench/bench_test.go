package bench

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker/brokertest"
	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/internal/sqldb"
)

func TestLatencySummary(t *testing.T) {
	var l Latencies
	for i := 1; i <= 1000; i++ {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	s := l.Summary()
	if s.Count != 1000 || s.P50 != 500*time.Millisecond || s.P99 != 990*time.Millisecond || s.P999 != 999*time.Millisecond || s.Max != time.Second {
		t.Fatalf("%+v", s)
	}
}

func TestPublishCountsAndOrder(t *testing.T) {
	evs, err := Events(1000, 7)
	if err != nil {
		t.Fatal(err)
	}
	rec := brokertest.NewRecorder()
	var last atomic.Int64
	progress := func(n int) { last.Add(int64(n)) }
	r, err := Publish(context.Background(), "rec", evs, BrokerFunc(rec), PublishOptions{Batch: 64, Concurrency: 3, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 1000 || len(rec.Events()) != 1000 || last.Load() != 1000 || r.Latency.Count != 16 {
		t.Fatalf("result %+v, recorded %d, progress %d", r, len(rec.Events()), last.Load())
	}
	rec.FailNext = 1
	if _, err := Publish(context.Background(), "rec", evs, BrokerFunc(rec), PublishOptions{}); err == nil {
		t.Fatal("a failing publish was not reported")
	}
}

// TestSQLiteParleyVsRaw runs both SQL clients on the same events and
// checks they wrote the same rows: the benchmark compares like with like.
func TestSQLiteParleyVsRaw(t *testing.T) {
	ctx := context.Background()
	evs, _ := Events(2000, 20)
	opts := sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "b.db")}
	b, err := sqlbroker.Open(ctx, sqlbroker.Config{DB: opts, Table: "p"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, "parley", evs, BrokerFunc(b), PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	db := b.DB()
	if err := sqlbroker.CreateTable(ctx, db, sqldb.SQLite, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, "raw", evs, RawSQL(db, sqldb.SQLite, "r"), PublishOptions{Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	var np, nr int
	db.QueryRow("SELECT count(*) FROM p").Scan(&np)
	db.QueryRow("SELECT count(*) FROM r").Scan(&nr)
	var diff int
	db.QueryRow("SELECT count(*) FROM (SELECT sender_id, data FROM p EXCEPT SELECT sender_id, data FROM r)").Scan(&diff)
	if np != 2000 || nr != 2000 || diff != 0 {
		t.Fatalf("parley %d rows, raw %d rows, %d differ", np, nr, diff)
	}
	b.Close(ctx)
}

// BenchmarkSQLite compares parley's SQL broker with the raw batched insert
// and with Rasa's commit-per-event pattern on the same SQLite file system.
func BenchmarkSQLite(b *testing.B) {
	ctx := context.Background()
	evs, _ := Events(5000, 50)
	for _, name := range []string{"parley", "raw", "rasa-pattern"} {
		b.Run(name, func(b *testing.B) {
			opts := sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(b.TempDir(), "b.db")}
			br, err := sqlbroker.Open(ctx, sqlbroker.Config{DB: opts, Table: "events"}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close(ctx)
			pub := map[string]PublishFunc{
				"parley":       BrokerFunc(br),
				"raw":          RawSQL(br.DB(), sqldb.SQLite, "events"),
				"rasa-pattern": RasaPatternSQL(br.DB(), sqldb.SQLite, "events"),
			}[name]
			batch := evs
			if name == "rasa-pattern" {
				batch = evs[:200] // one fsync per event: keep the run short
			}
			b.SetBytes(int64(len(Payloads(batch)[0])) * int64(len(batch)))
			for b.Loop() {
				if _, err := Publish(ctx, name, batch, pub, PublishOptions{Batch: 500, Concurrency: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(batch))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
