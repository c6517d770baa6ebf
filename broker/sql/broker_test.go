package sql

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/internal/testenv"
)

var tableSeq atomic.Int64

// harness opens the broker on a new table of the database opts names.
func harness(opts sqldb.Options) brokertest.Harness {
	return brokertest.Harness{
		Features: brokertest.Features{GlobalOrder: true},
		Open: func(t *testing.T) brokertest.Destination {
			table := fmt.Sprintf("events_t%d", tableSeq.Add(1))
			ctx := context.Background()
			b, err := Open(ctx, Config{DB: opts, Table: table}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			reader, err := sqldb.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if opts.Dialect == sqldb.Postgres {
					_, _ = reader.Exec("DROP TABLE " + table)
				}
				reader.Close()
			})
			return brokertest.Destination{
				Broker: b,
				Read: func(ctx context.Context, n int) ([]brokertest.Message, error) {
					return readTable(ctx, reader, table)
				},
			}
		},
	}
}

func readTable(ctx context.Context, db *stdsql.DB, table string) ([]brokertest.Message, error) {
	rows, err := db.QueryContext(ctx, "SELECT sender_id, data FROM "+table+" ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []brokertest.Message
	for rows.Next() {
		var sender, data string
		if err := rows.Scan(&sender, &data); err != nil {
			return nil, err
		}
		out = append(out, brokertest.Message{Body: []byte(data), Key: []byte(sender)})
	}
	return out, rows.Err()
}

func TestConformanceSQLite(t *testing.T) {
	brokertest.Run(t, harness(sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "events.db")}))
}

func postgresOptions(t testing.TB) sqldb.Options {
	return sqldb.Options{Dialect: sqldb.Postgres, Host: testenv.Get(t, "PARLEY_POSTGRES_DSN")}
}

func TestConformancePostgres(t *testing.T) {
	brokertest.Run(t, harness(postgresOptions(t)))
}

// TestRasaCreatedTable writes into tables made with the DDL SQLAlchemy
// emits for Rasa's SQLEventBroker, and checks the rows hold Rasa's bytes.
func TestRasaCreatedTable(t *testing.T) {
	cases := map[string]struct {
		opts func(t *testing.T) sqldb.Options
		ddl  string
	}{
		"sqlite": {
			opts: func(t *testing.T) sqldb.Options {
				return sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "events.db")}
			},
			ddl: "CREATE TABLE %s (id INTEGER NOT NULL, sender_id VARCHAR(255), data TEXT, PRIMARY KEY (id))",
		},
		"postgres": {
			opts: func(t *testing.T) sqldb.Options { return postgresOptions(t) },
			ddl:  "CREATE TABLE %s (id SERIAL NOT NULL, sender_id VARCHAR(255), data TEXT, PRIMARY KEY (id))",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			opts := c.opts(t)
			ctx := context.Background()
			db, err := sqldb.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			table := fmt.Sprintf("rasa_events_%d", tableSeq.Add(1))
			if _, err := db.Exec(fmt.Sprintf(c.ddl, table)); err != nil {
				t.Fatal(err)
			}
			defer db.Exec("DROP TABLE " + table) //nolint:errcheck
			// A row Rasa wrote earlier stays first.
			if _, err := db.Exec("INSERT INTO " + table + " (sender_id, data) VALUES ('old', '{}')"); err != nil {
				t.Fatal(err)
			}
			b, err := Open(ctx, Config{DB: opts, Table: table}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			var evs []event.Event
			for _, l := range fixtures.Events() {
				ev, err := event.Parse(l)
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, ev)
			}
			if err := b.Publish(ctx, evs...); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := readTable(ctx, db, table)
			if err != nil {
				t.Fatal(err)
			}
			want := fixtures.RasaBytes()
			if len(got) != len(want)+1 || string(got[0].Key) != "old" {
				t.Fatalf("got %d rows, want %d after Rasa's", len(got), len(want)+1)
			}
			for i, w := range want {
				if string(got[i+1].Body) != string(w) || string(got[i+1].Key) != evs[i].SenderID {
					t.Fatalf("row %d:\n got %s %s\nwant %s %s", i+2, got[i+1].Key, got[i+1].Body, evs[i].SenderID, w)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	ep, err := config.Parse("endpoints.yml", []byte("event_broker:\n  type: SQL\n  dialect: postgresql\n  url: db.example\n  port: 5433\n  db: rasa\n  username: u\n  password: p w\n  query:\n    sslmode: require\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(ep.EventBrokers[0])
	if err != nil {
		t.Fatal(err)
	}
	driver, dsn := c.DB.DSN()
	if driver != "pgx" || dsn != "postgres://u:p%20w@db.example:5433/rasa?sslmode=require" {
		t.Fatalf("dsn = %s %s", driver, dsn)
	}
	ep, err = config.Parse("endpoints.yml", []byte("event_broker:\n  type: sql\n  dialect: mysql\n  table: \"x; drop\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseConfig(ep.EventBrokers[0])
	want := "endpoints.yml:3: event_broker.dialect: unsupported dialect \"mysql\" (supported: sqlite, postgresql)\nendpoints.yml:4: event_broker.table: \"x; drop\" is not a plain SQL table name"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestRegisteredAsSQL(t *testing.T) {
	ep, err := config.Parse("endpoints.yml", []byte("event_broker:\n  type: SQL\n  db: "+filepath.Join(t.TempDir(), "x.db")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := broker.OpenAll(context.Background(), ep.EventBrokers, broker.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Fanout(bs).Close(context.Background())
	if len(bs) != 1 || bs[0].Name != "sql" {
		t.Fatalf("got %+v", bs)
	}
}
