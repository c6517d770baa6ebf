package sql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
)

// TestTableDroppedWhileRunning: a publish to a dropped table fails with a
// retriable error (the spool retries it, never dead-letters it), and the
// table is created again, so the retry goes through (issue 21).
func TestTableDroppedWhileRunning(t *testing.T) {
	cases := map[string]func(t *testing.T) sqldb.Options{
		"sqlite": func(t *testing.T) sqldb.Options {
			return sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "events.db")}
		},
		"postgres": func(t *testing.T) sqldb.Options { return postgresOptions(t) },
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			o := opts(t)
			ctx := context.Background()
			table := fmt.Sprintf("dropped_%d", tableSeq.Add(1))
			b, err := Open(ctx, Config{DB: o, Table: table}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(ctx)
			defer b.DB().Exec("DROP TABLE IF EXISTS " + table) //nolint:errcheck
			ev, err := event.Parse([]byte(`{"event":"action","sender_id":"s1","timestamp":1,"name":"action_listen"}`))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if _, err := b.DB().Exec("DROP TABLE " + table); err != nil {
				t.Fatal(err)
			}
			err = b.Publish(ctx, ev)
			if err == nil {
				t.Fatal("Publish into a dropped table succeeded")
			}
			if errors.Is(err, broker.ErrPermanent) {
				t.Fatalf("a dropped table is created again: the error must be retriable: %v", err)
			}
			if err := b.Publish(ctx, ev); err != nil {
				t.Fatalf("retry after the table was created again: %v", err)
			}
			var n int
			if err := b.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil || n != 1 {
				t.Fatalf("rows after the retry: %d (%v), want 1", n, err)
			}
		})
	}
}

// TestInvalidSenderRefused: a sender id that is not UTF-8 never reaches
// the sender_id column (Python's sqlite3 could not read the row back); the
// refusal is permanent (issue 14).
func TestInvalidSenderRefused(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Config{DB: sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "events.db")}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	ev, err := event.Parse([]byte(`{"event":"action","sender_id":"s\udc00","timestamp":1,"name":"action_listen"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, ev); !errors.Is(err, broker.ErrPermanent) {
		t.Fatalf("Publish = %v, want a permanent refusal", err)
	}
	var n int
	if err := b.DB().QueryRow("SELECT COUNT(*) FROM events").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows (%v), want none", n, err)
	}
}
