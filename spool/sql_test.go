package spool

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/internal/testenv"
)

var sqlTableSeq atomic.Int64

// Through the real sql broker, with nothing failing, every event lands in
// Rasa's events table exactly once, in the spool's order.
func TestDeliverToSQLBroker(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) sqldb.Options
	}{
		{"sqlite", func(t *testing.T) sqldb.Options {
			return sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "events.db")}
		}},
		{"postgres", func(t *testing.T) sqldb.Options {
			return sqldb.Options{Dialect: sqldb.Postgres, Host: testenv.Get(t, "PARLEY_POSTGRES_DSN")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts(t)
			ctx := context.Background()
			table := fmt.Sprintf("spool_events_%d_%d", time.Now().UnixNano()%1e9, sqlTableSeq.Add(1))
			b, err := sqlbroker.Open(ctx, sqlbroker.Config{DB: opts, Table: table}, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(ctx)
			if opts.Dialect == sqldb.Postgres {
				defer b.DB().Exec("DROP TABLE " + table)
			}
			cfg := testConfig(t.TempDir())
			cfg.Fsync = FsyncAlways
			cfg.MaxBatch = 100
			s := openT(t, cfg, named("sql", b))

			const senders, batches, per = 4, 25, 8
			bySeq := make(map[uint64]event.Event)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for c := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range batches {
						evs := seqEvents(fmt.Sprintf("user-%d", c), i*per, per)
						last, err := s.Append(ctx, evs...)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for j, ev := range evs {
							bySeq[last-uint64(per-1-j)] = ev
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			total := senders * batches * per
			eventually(t, "delivery to the end", func() bool { return s.Status().Brokers[0].Cursor == uint64(total) })
			if err := closeT(t, s, 5*time.Second); err != nil {
				t.Fatal(err)
			}

			rows := readRows(t, b.DB(), table)
			if len(rows) != total {
				t.Fatalf("%d rows, want %d", len(rows), total)
			}
			for i, r := range rows {
				want := bySeq[uint64(i)]
				if r.sender != want.SenderID || r.data != string(want.RasaJSON()) {
					t.Fatalf("row %d: %s %s\nwant %s %s", i, r.sender, r.data, want.SenderID, want.RasaJSON())
				}
			}
		})
	}
}

type row struct{ sender, data string }

func readRows(t *testing.T, db *stdsql.DB, table string) []row {
	t.Helper()
	rs, err := db.Query("SELECT sender_id, data FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.sender, &r.data); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
