package cli

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/bench"
	"github.com/parleyhq/parley/internal/sqldb"
)

// TestBenchPublishOwnTable: bench publish writes its generated events
// into its own table, never the configured events table, unless
// --into-configured (issue 14).
func TestBenchPublishOwnTable(t *testing.T) {
	dir := t.TempDir()
	count := func(table string) int {
		t.Helper()
		db, err := sqldb.Open(context.Background(), sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(dir, "events.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			return -1 // no such table
		}
		return n
	}
	if out, err := run(t, dir, nil, "bench", "publish", "--events", "50", "--rounds", "1"); err != nil {
		t.Fatalf("bench publish: %v\n%s", err, out)
	}
	if n := count("events"); n > 0 {
		t.Fatalf("bench wrote %d rows into the configured events table", n)
	}
	if n := count(bench.OwnTable); n <= 0 {
		t.Fatalf("%s has %d rows, want the benchmark's events", bench.OwnTable, n)
	}
	if out, err := run(t, dir, nil, "bench", "publish", "--events", "50", "--rounds", "1", "--raw=false", "--into-configured"); err != nil {
		t.Fatalf("bench publish --into-configured: %v\n%s", err, out)
	}
	if n := count("events"); n <= 0 {
		t.Fatalf("--into-configured: events has %d rows", n)
	}
}
