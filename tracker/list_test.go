package tracker_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/tracker"
	"github.com/parleyhq/parley/tracker/trackertest"
)

func TestMemoryList(t *testing.T) { testList(t, tracker.NewMemoryStore()) }

func TestSQLiteList(t *testing.T) { testList(t, openSQL(t, sqliteConfig(t))) }

func TestPostgresList(t *testing.T) { testList(t, openSQL(t, postgresConfig(t))) }

func ids(cs []tracker.ConversationInfo) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// listAll pages through every conversation matching search, limit at a
// time, checking that no page repeats a conversation.
func listAll(t *testing.T, s tracker.Store, search string, limit int) []string {
	t.Helper()
	var all []string
	var before int64
	for range 100 {
		page, err := tracker.List(ctx(t), s, tracker.ListQuery{Search: search, Before: before, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d conversations, limit %d", len(page), limit)
		}
		for _, c := range page {
			if slices.Contains(all, c.ID) {
				t.Fatalf("conversation %q on two pages: %v", c.ID, all)
			}
			all = append(all, c.ID)
		}
		if len(page) < limit {
			return all
		}
		before = page[len(page)-1].Cursor
	}
	t.Fatal("paging does not end")
	return nil
}

func testList(t *testing.T, s tracker.Store) {
	c := ctx(t)
	user := func(ts float64, text string) event.Event {
		return trackertest.Event(t, ts, "user", `"text": `+strconv.Quote(text)+`, "parse_data": {"intent": {"name": "greet", "confidence": 0.9}}`)
	}
	slot := func(ts float64) event.Event {
		return trackertest.Event(t, ts, "slot", `"name": "city", "value": "Berlin"`)
	}
	// Written in this order; c1 gets a second write last.
	writes := []struct {
		id string
		ev event.Event
	}{
		{"c1", user(1, "hello there")},
		{"c2", user(2, "Grüße aus München")},
		{"c3", slot(3)},
		{"odd %_\\ id", user(4, "100% sure")},
		{"c5", user(5, "<script>alert(1)</script>")},
		{"c1", slot(6)},
	}
	for _, w := range writes {
		if err := tracker.Append(c, s, w.id, w.ev); err != nil {
			t.Fatal(err)
		}
	}
	page, err := tracker.List(c, s, tracker.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page), []string{"c1", "c5", "odd %_\\ id", "c3", "c2"}; !slices.Equal(got, want) {
		t.Fatalf("newest activity first: got %q, want %q", got, want)
	}
	if page[0].Events != 2 || page[0].LastType != "slot" || page[0].LastTimestamp != 6 {
		t.Errorf("c1 summary: %+v", page[0])
	}
	if page[4].Events != 1 || page[4].LastType != "user" || page[4].LastTimestamp != 2 {
		t.Errorf("c2 summary: %+v", page[4])
	}
	for _, limit := range []int{1, 2, 4} {
		if got := listAll(t, s, "", limit); !slices.Equal(got, ids(page)) {
			t.Errorf("pages of %d: got %q, want %q", limit, got, ids(page))
		}
	}
	for _, tc := range []struct {
		search string
		want   []string
	}{
		{"C", []string{"c1", "c5", "c3", "c2"}}, // sender ids, any case
		{"HELLO", []string{"c1"}},               // text, any case
		{"grüße", []string{"c2"}},               // non-ASCII text, stored \u-escaped
		{"münchen", []string{"c2"}},             //
		{"%", []string{"odd %_\\ id"}},          // LIKE wildcards are literal
		{"_", []string{"odd %_\\ id"}},          //
		{`\`, []string{"odd %_\\ id"}},          //
		{"<script>", []string{"c5"}},            //
		{"berlin", nil},                         // slot values are not searched
		{"nothing like this", nil},              //
		{"o", []string{"c1", "odd %_\\ id"}},    // "hello", the id "odd"; not the key "confidence"
	} {
		got := listAll(t, s, tc.search, 2)
		if !slices.Equal(got, tc.want) {
			t.Errorf("search %q: got %q, want %q", tc.search, got, tc.want)
		}
	}
	// Replacing a conversation is a write: it moves to the top.
	if err := tracker.Replace(c, s, "c2", []event.Event{user(7, "again")}); err != nil {
		t.Fatal(err)
	}
	page, err = tracker.List(c, s, tracker.ListQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page), []string{"c2", "c1"}; !slices.Equal(got, want) {
		t.Errorf("after replace: got %q, want %q", got, want)
	}
}

// BenchmarkList100k measures a page of 50 at the newest end and deep
// into 100,000 conversations of 4 events each (interleaved in pairs), on
// SQLite and, with PARLEY_POSTGRES_DSN, PostgreSQL.
func BenchmarkList100k(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchList(b, tracker.Config{Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.SQLite, DB: b.TempDir() + "/rasa.db"}, Table: tracker.DefaultTable})
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := os.Getenv("PARLEY_POSTGRES_DSN")
		if dsn == "" {
			b.Skip("PARLEY_POSTGRES_DSN not set")
		}
		table := "trk_bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
		b.Cleanup(func() {
			if db, err := sql.Open("pgx", dsn); err == nil {
				_, _ = db.Exec("DROP TABLE IF EXISTS " + table)
				db.Close()
			}
		})
		benchList(b, tracker.Config{Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.Postgres, Host: dsn}, Table: table})
	})
}

func benchList(b *testing.B, cfg tracker.Config) {
	const convs, perConv = 100_000, 4
	s, err := tracker.OpenSQL(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill(b, s.DB(), cfg.SQL.Dialect, cfg.Table, convs, perConv)
	first, err := tracker.List(context.Background(), s, tracker.ListQuery{})
	if err != nil || len(first) != 50 {
		b.Fatal(len(first), err)
	}
	var maxID int64
	if err := s.DB().QueryRow("SELECT MAX(id) FROM " + cfg.Table).Scan(&maxID); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		q    tracker.ListQuery
	}{
		{"first", tracker.ListQuery{}},
		{"deep", tracker.ListQuery{Before: maxID / 2}}, // halfway back
		{"search-sender", tracker.ListQuery{Search: "user-0000"}},
		{"search-text", tracker.ListQuery{Search: "order 99999"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tracker.List(context.Background(), s, bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill inserts conversations directly, two at a time interleaved, as
// Rasa's save would have written them, 100 rows a statement.
func fill(b *testing.B, db *sql.DB, d sqldb.Dialect, table string, convs, perConv int) {
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	var args []any
	flush := func() {
		if len(args) == 0 {
			return
		}
		var q strings.Builder
		q.WriteString("INSERT INTO " + table + " (sender_id, type_name, timestamp, data) VALUES ")
		for i := 0; i < len(args)/4; i++ {
			if i > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%s,%s,%s,%s)", d.Placeholder(4*i+1), d.Placeholder(4*i+2), d.Placeholder(4*i+3), d.Placeholder(4*i+4))
		}
		if _, err := tx.Exec(q.String(), args...); err != nil {
			b.Fatal(err)
		}
		args = args[:0]
	}
	ts := 1.0
	for c := 0; c < convs; c += 2 {
		for e := 0; e < perConv; e++ {
			for k := c; k < c+2; k++ {
				ts++
				data := fmt.Sprintf(`{"event": "user", "timestamp": %g, "text": "order %d step %d"}`, ts, k, e)
				args = append(args, fmt.Sprintf("user-%06d", k), "user", ts, data)
				if len(args) == 400 {
					flush()
				}
			}
		}
	}
	flush()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if d == sqldb.Postgres {
		if _, err := db.Exec("ANALYZE " + table); err != nil {
			b.Fatal(err)
		}
	}
}
