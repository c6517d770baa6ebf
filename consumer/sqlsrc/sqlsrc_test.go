package sqlsrc_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/consumertest"
	"github.com/parleyhq/parley/consumer/sqlsrc"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/internal/testenv"
)

var seq atomic.Int64

// backend makes a fresh events table in the database opts names, written
// through the SQL broker as parley writes it.
func backend(t *testing.T, opts sqldb.Options, notify bool) consumertest.Backend {
	n := seq.Add(1)
	table := fmt.Sprintf("events_c%d", n)
	topic := fmt.Sprintf("events_topic_%d", n)
	offsets := fmt.Sprintf("offsets_c%d", n)
	ctx := context.Background()
	brk, err := sqlbroker.Open(ctx, sqlbroker.Config{DB: opts, Table: table}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		src *sqlsrc.Source
	)
	t.Cleanup(func() {
		brk.Close(ctx)
		if opts.Dialect == sqldb.Postgres {
			db, err := sqldb.Open(ctx, opts)
			if err == nil {
				db.Exec("DROP TABLE IF EXISTS " + table)
				db.Exec("DROP TABLE IF EXISTS " + offsets)
				db.Close()
			}
		}
	})
	return consumertest.Backend{
		Topic: topic,
		Open: func(t *testing.T) consumer.Source {
			db, err := sqldb.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			s, err := sqlsrc.New(ctx, sqlsrc.Options{DB: db, Dialect: opts.Dialect, Table: table, Topic: topic, OffsetsTable: offsets})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			src = s
			mu.Unlock()
			t.Cleanup(func() { s.Close(ctx); db.Close() })
			return s
		},
		Produce: func(t *testing.T, evs []event.Event) {
			if err := brk.Publish(ctx, evs...); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			s := src
			mu.Unlock()
			if notify && s != nil {
				s.Notify()
			}
		},
	}
}

func sqlite(t *testing.T) sqldb.Options {
	return sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "events.db")}
}

func postgres(t *testing.T) sqldb.Options {
	return sqldb.Options{Dialect: sqldb.Postgres, Host: testenv.Get(t, "PARLEY_POSTGRES_DSN")}
}

func TestSuiteSQLite(t *testing.T) {
	consumertest.Run(t, consumertest.Harness{
		Partitions: 1,
		Setup:      func(t *testing.T) consumertest.Backend { return backend(t, sqlite(t), true) },
	})
}

func TestSuitePostgres(t *testing.T) {
	opts := postgres(t)
	consumertest.Run(t, consumertest.Harness{
		Partitions: 1,
		Setup:      func(t *testing.T) consumertest.Backend { return backend(t, opts, true) },
	})
}

// TestSuiteWithoutNotify runs the suite with rows written by "another
// process": nothing calls Notify, the watcher must find them.
func TestSuiteWithoutNotify(t *testing.T) {
	consumertest.Run(t, consumertest.Harness{
		Partitions: 1,
		Setup:      func(t *testing.T) consumertest.Backend { return backend(t, sqlite(t), false) },
	})
}

// TestPostgresLateCommit writes a row whose transaction draws its id
// before another's but commits after it: the reader must wait for it
// rather than skip it.
func TestPostgresLateCommit(t *testing.T) {
	opts := postgres(t)
	ctx := context.Background()
	b := backend(t, opts, true)
	env := consumertest.Start(t, b, consumertest.Config())
	c := env.API.Create("late", "c1", map[string]any{"auto.offset.reset": "earliest"})
	c.Subscribe(b.Topic)
	b.Produce(t, consumertest.Events(0, 1))
	if got := consumertest.ReadN(t, c, 1); got[0].Seq() != 0 {
		t.Fatalf("read %d", got[0].Seq())
	}

	db, err := sqldb.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table := tableOf(t, db, b.Topic)
	slow, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback()
	ev1 := consumertest.Events(1, 1)[0]
	if _, err := slow.Exec("INSERT INTO "+table+" (sender_id, data) VALUES ($1, $2)", ev1.SenderID, string(ev1.RasaJSON())); err != nil {
		t.Fatal(err)
	}
	b.Produce(t, consumertest.Events(2, 1)) // a higher id, committed first
	// While the first transaction is open the reader must not pass its id.
	if got := c.Records("timeout=500"); len(got) != 0 {
		t.Fatalf("read seq %d past an uncommitted row", got[0].Seq())
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	got := consumertest.ReadN(t, c, 2)
	if got[0].Seq() != 1 || got[1].Seq() != 2 {
		t.Fatalf("read %d, %d; want 1, 2", got[0].Seq(), got[1].Seq())
	}
}

// TestPostgresAbortedGap skips the id of a rolled-back transaction
// without waiting for the gap timeout.
func TestPostgresAbortedGap(t *testing.T) {
	opts := postgres(t)
	ctx := context.Background()
	b := backend(t, opts, true)
	env := consumertest.Start(t, b, consumertest.Config())
	c := env.API.Create("aborted", "c1", map[string]any{"auto.offset.reset": "earliest"})
	c.Subscribe(b.Topic)
	b.Produce(t, consumertest.Events(0, 1))
	consumertest.ReadN(t, c, 1)
	db, err := sqldb.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table := tableOf(t, db, b.Topic)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO " + table + " (sender_id, data) VALUES ('x', '{}')"); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	b.Produce(t, consumertest.Events(1, 1))
	// The default gap timeout is 30s; the reader must do far better.
	got := c.Records("timeout=10000")
	if len(got) != 1 || got[0].Seq() != 1 {
		t.Fatalf("read %v after an aborted id", got)
	}
}

func tableOf(t *testing.T, db *sql.DB, topic string) string {
	var n int
	if _, err := fmt.Sscanf(topic, "events_topic_%d", &n); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("events_c%d", n)
}
