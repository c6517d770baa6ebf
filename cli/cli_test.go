package cli

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/bench"
	_ "github.com/parleyhq/parley/broker/all"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/internal/testenv"
)

// run executes the command line in dir with stdin and returns stdout,
// stderr-worthy error text and the error.
func run(t *testing.T, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	t.Chdir(dir)
	cmd := New()
	var out bytes.Buffer
	cmd.SetIn(bytes.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func readEventsTable(t *testing.T, opts sqldb.Options, table string) []string {
	t.Helper()
	db, err := sqldb.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return queryData(t, db, "SELECT data FROM "+table+" ORDER BY id")
}

func queryData(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func wantRasaLines(t *testing.T, got []string) {
	t.Helper()
	want := fixtures.RasaBytes()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != string(want[i]) {
			t.Fatalf("row %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

// TestPublishDefaultSQLite is the first "done when": in an empty
// directory, publish creates events.db whose data column is Rasa's bytes.
func TestPublishDefaultSQLite(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, dir, fixtures.EventsNDJSON(), "publish")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "published 84 events to sql") {
		t.Fatalf("output: %q", out)
	}
	wantRasaLines(t, readEventsTable(t, sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(dir, "events.db")}, "events"))
}

func TestPublishFileBroker(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte("event_broker:\n  type: file\n  path: out.log\n"), 0o644)
	in := filepath.Join(dir, "in.ndjson")
	os.WriteFile(in, fixtures.EventsNDJSON(), 0o644)
	if _, err := run(t, dir, nil, "publish", in); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fixtures.RasaNDJSON()) {
		t.Fatalf("file differs:\n%s", got)
	}
}

func TestPublishPostgres(t *testing.T) {
	dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
	dir := t.TempDir()
	table := "cli_events_" + strings.ReplaceAll(filepath.Base(dir), "-", "_")
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte("event_broker:\n  type: sql\n  dialect: postgresql\n  url: ${PARLEY_POSTGRES_DSN}\n  table: "+table+"\n"), 0o644)
	if _, err := run(t, dir, fixtures.EventsNDJSON(), "publish"); err != nil {
		t.Fatal(err)
	}
	opts := sqldb.Options{Dialect: sqldb.Postgres, Host: dsn}
	defer func() {
		db, _ := sqldb.Open(context.Background(), opts)
		db.Exec("DROP TABLE " + table)
		db.Close()
	}()
	wantRasaLines(t, readEventsTable(t, opts, table))
}

// TestPublishBadLine checks a malformed line stops the run after every
// earlier line is published, naming the line.
func TestPublishBadLine(t *testing.T) {
	dir := t.TempDir()
	lines := fixtures.Events()
	in := strings.Join([]string{string(lines[0]), string(lines[1]), `{"sender_id": "x", "event": "bot", "timestamp": "soon"}`, string(lines[2])}, "\n")
	out, err := run(t, dir, []byte(in), "publish")
	if err == nil || !strings.HasPrefix(err.Error(), "line 3: timestamp: must be a number") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(out, "published 2 events") {
		t.Fatalf("output: %q", out)
	}
	got := readEventsTable(t, sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(dir, "events.db")}, "events")
	if len(got) != 2 || got[1] != string(fixtures.RasaBytes()[1]) {
		t.Fatalf("rows: %v", got)
	}
}

func TestBadEndpoints(t *testing.T) {
	os.Unsetenv("PARLEY_NOT_SET_ANYWHERE")
	cases := map[string]struct{ yml, want string }{
		"unknown type":   {"event_broker:\n  type: kafak\n", `endpoints.yml:2: event_broker.type: unknown event broker type "kafak" (registered: `},
		"wrong key type": {"event_broker:\n  type: sql\n  max_batch: lots\n", `endpoints.yml:3: event_broker.max_batch: "lots" is not a number`},
		"unset var":      {"event_broker:\n  type: sql\n  password: ${PARLEY_NOT_SET_ANYWHERE}\n", "endpoints.yml:3: event_broker.password: environment variable ${PARLEY_NOT_SET_ANYWHERE} is not set"},
		"yaml syntax":    {"event_broker:\n  type: sql\n db: x\n", "endpoints.yml:2: YAML syntax error: did not find expected key (in the block starting on this line"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte(c.yml), 0o644)
			for _, args := range [][]string{{"publish"}, {"config", "check"}} {
				_, err := run(t, dir, fixtures.EventsNDJSON(), args...)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%v: got %v, want %q", args, err, c.want)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "events.db")); err == nil {
				t.Errorf("events.db created despite the bad configuration")
			}
		})
	}
}

func TestConfigCheckMasksSecrets(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PARLEY_TEST_SECRET", "hunter2")
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte("event_broker:\n  type: sql\n  dialect: postgresql\n  username: u\n  password: ${PARLEY_TEST_SECRET}\n  tabel: x\n"), 0o644)
	out, err := run(t, dir, nil, "config", "check")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "password: '******'") {
		t.Fatalf("secret not masked:\n%s", out)
	}
	if !strings.Contains(out, "endpoints.yml:6: event_broker.tabel: unknown key for type sql, ignored") {
		t.Fatalf("no warning for the misspelt key:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, t.TempDir(), nil, "version")
	if err != nil || !strings.HasPrefix(out, "parley ") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestPairedRatioCancelsDrift(t *testing.T) {
	round := func(events int, d time.Duration) bench.Result { return bench.Result{Events: events, Duration: d} }
	// The machine slows down over the rounds; a is 10% faster in each.
	a := []bench.Result{round(110, time.Second), round(55, time.Second), round(220, time.Second)}
	b := []bench.Result{round(100, time.Second), round(50, time.Second), round(200, time.Second)}
	if got := pairedRatio(a, b); got < 1.0999 || got > 1.1001 {
		t.Fatalf("paired ratio %v, want 1.1", got)
	}
	if got := pairedRatio(nil, b); got != 0 {
		t.Fatalf("no rounds: %v", got)
	}
}

// TestConfigCheckStrict: a misspelt section is a warning, and --strict
// makes warnings fail the check, for deployment pipelines (issue 14).
func TestConfigCheckStrict(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte("event_brokr:\n  type: file\n"), 0o600)
	out, err := run(t, dir, nil, "config", "check")
	if err != nil || !strings.Contains(out, "# endpoints.yml:1: event_brokr: unknown section, ignored (did you mean event_broker?)") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	_, err = run(t, dir, nil, "config", "check", "--strict")
	if err == nil || !strings.Contains(err.Error(), "--strict: warnings fail the check:\nendpoints.yml:1: event_brokr: unknown section") {
		t.Fatalf("config check --strict: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte("event_broker:\n  type: file\n"), 0o600)
	if _, err := run(t, dir, nil, "config", "check", "--strict"); err != nil {
		t.Fatalf("config check --strict on a clean file: %v", err)
	}
}

// TestMissingTypeSaysPika: a broker section without type is Rasa's pika,
// and the errors of that type say so (issue 14).
func TestMissingTypeSaysPika(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte("event_broker:\n  url: localhost\n"), 0o600)
	_, err := run(t, dir, nil, "config", "check")
	if err == nil || !strings.Contains(err.Error(), "endpoints.yml:2: event_broker.username: is required") ||
		!strings.Contains(err.Error(), "endpoints.yml:2: event_broker: no type given, so Rasa's default pika (RabbitMQ) applies; set type (") {
		t.Fatalf("config check: %v", err)
	}
}

// TestServeHelpSaysWhatTheTokenCovers: --help names the endpoints the
// auth token protects and those left open (issue 14).
func TestServeHelpSaysWhatTheTokenCovers(t *testing.T) {
	out, err := run(t, t.TempDir(), nil, "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--auth-token (?token= or Authorization: Bearer, any case):\n      POST /events, Rasa's /conversations/{id}/tracker API",
		"open, for load balancers and Prometheus (no conversation data):\n      GET /health, /ready, /metrics, /version, /openapi.json, /",
		"--body-timeout", "--idle-timeout", "--read-header-timeout",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
}
