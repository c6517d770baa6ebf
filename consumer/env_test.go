package consumer_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/auth"
	"github.com/parleyhq/parley/consumer/consumertest"
	"github.com/parleyhq/parley/consumer/sqlsrc"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
)

const topic = "rasa_core_events"

// sqliteBackend is an events table in a temporary SQLite database,
// written through the SQL broker.
func sqliteBackend(t *testing.T) consumertest.Backend {
	ctx := context.Background()
	opts := sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "events.db")}
	brk, err := sqlbroker.Open(ctx, sqlbroker.Config{DB: opts}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brk.Close(ctx) })
	var src *sqlsrc.Source
	return consumertest.Backend{
		Topic: topic,
		Open: func(t *testing.T) consumer.Source {
			db, err := sqldb.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			s, err := sqlsrc.New(ctx, sqlsrc.Options{DB: db, Dialect: sqldb.SQLite})
			if err != nil {
				t.Fatal(err)
			}
			src = s
			t.Cleanup(func() { s.Close(ctx); db.Close() })
			return s
		},
		Produce: func(t *testing.T, evs []event.Event) {
			if err := brk.Publish(ctx, evs...); err != nil {
				t.Fatal(err)
			}
			src.Notify()
		},
	}
}

// start serves the API on SQLite with the default configuration, without
// rate limiting (TestRateLimit tests it), changed by mutate.
func start(t *testing.T, mutate func(*consumer.Config)) *consumertest.Env {
	cfg := consumer.DefaultConfig()
	cfg.RateLimit = 0
	if mutate != nil {
		mutate(&cfg)
	}
	return consumertest.Start(t, sqliteBackend(t), cfg)
}

// cheapHash hashes a secret with few iterations, to keep tests fast.
func cheapHash(t testing.TB, secret string) string {
	h, err := auth.HashSecretCost(secret, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
