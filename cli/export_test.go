package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/file"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/tracker"
)

// exportTestFlaky is a file broker that fails for good after fail_after
// events, to stop an export midway.
func init() {
	broker.Register("exporttest_flaky", func(sec *config.Section) (broker.Opener, error) {
		n := sec.Int("fail_after", 0)
		c, err := file.ParseConfig(sec)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, env broker.Env) (broker.Broker, error) {
			b, err := file.Open(c, env.LoggerOrDefault())
			if err != nil {
				return nil, err
			}
			return &flaky{Broker: b, left: n}, nil
		}, nil
	})
}

type flaky struct {
	broker.Broker
	mu   sync.Mutex
	left int
}

func (f *flaky) Publish(ctx context.Context, evs ...event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(evs) > f.left {
		return broker.Permanent(errors.New("the broker is gone"))
	}
	f.left -= len(evs)
	return f.Broker.Publish(ctx, evs...)
}

// exportDir makes a directory with rasa.db holding the fixture
// conversations and an endpoints.yml exporting them to out.log.
func exportDir(t *testing.T, brokerYAML string) string {
	t.Helper()
	dir := t.TempDir()
	s, err := tracker.OpenSQL(context.Background(), tracker.Config{
		Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(dir, "rasa.db")}, Table: "events",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range fixtures.Events() {
		ev, _ := event.Parse(line)
		if err := tracker.Append(context.Background(), s, ev.SenderID, ev); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	yml := "tracker_store:\n  type: sql\n  dialect: sqlite\n  db: rasa.db\nevent_broker:\n" + brokerYAML
	if err := os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// exportedFixtures is the fixture lines as rasa export writes them, with
// sender_id last (made by text from the live bytes).
// exportedFixtures is what `rasa export` publishes for the stored fixture
// events, written by Rasa's own classes (export/testdata).
func exportedFixtures(t *testing.T) []string {
	t.Helper()
	return fileLines(t, rasaExportPath)
}

// rasaExportPath is absolute: some tests change the working directory.
var rasaExportPath, _ = filepath.Abs(filepath.Join("..", "export", "testdata", "rasa_export.ndjson"))

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestExportCommand(t *testing.T) {
	dir := exportDir(t, "  type: file\n  path: out.log\n")
	out, err := run(t, dir, nil, "export", "--batch-size", "10")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Done! Successfully published 84 events from 3 conversations to file") {
		t.Errorf("output: %s", out)
	}
	if strings.Contains(out, "%|") {
		t.Errorf("a progress bar although stderr is not a terminal: %q", out)
	}
	want := exportedFixtures(t)
	if got := fileLines(t, filepath.Join(dir, "out.log")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("out.log:\n%s", strings.Join(got, "\n"))
	}
}

func TestExportCommandFilters(t *testing.T) {
	dir := exportDir(t, "  type: file\n  path: out.log\n")
	out, err := run(t, dir, nil, "export", "--conversation-ids", "user-42,ghost",
		"--minimum-timestamp", "1700000046.623456", "--maximum-timestamp", "1700000070.623456",
		"--offset-timestamps-by-seconds", "-60")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Could not find the following requested conversation IDs in the tracker store: ghost") ||
		!strings.Contains(out, "offset by -60 seconds") || !strings.Contains(out, "Successfully published 16 events from 1 conversations") {
		t.Errorf("output: %s", out)
	}
	got := fileLines(t, filepath.Join(dir, "out.log"))
	if len(got) != 16 || !strings.HasPrefix(got[0], `{"event": "user", "timestamp": 1699999986.623456, `) ||
		!strings.HasSuffix(got[15], `"sender_id": "user-42"}`) || !strings.Contains(got[15], `"timestamp": 1700000009.123456`) {
		t.Fatalf("out.log:\n%s", strings.Join(got, "\n"))
	}
}

// TestExportCommandResume: a broker failing midway stops the export with
// exit status 1 and the command that completes it; running that command
// with a working broker completes the set.
func TestExportCommandResume(t *testing.T) {
	dir := exportDir(t, "  type: exporttest_flaky\n  path: out.log\n  fail_after: 35\n")
	out, err := run(t, dir, nil, "export", "--batch-size", "10", "--retry-for", "10ms", "--endpoints", "endpoints.yml", "--maximum-timestamp", "1700000200")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("export with a failing broker: %v (%T)\n%s", err, err, out)
	}
	msg := err.Error()
	m := regexp.MustCompile(`\n\t(parley export .*)\n`).FindStringSubmatch(msg)
	if m == nil || !strings.Contains(msg, "encountered error while publishing event with timestamp '1700000045.123456'") ||
		!strings.Contains(msg, "30 of 84 selected events were published") {
		t.Fatalf("error message:\n%s", msg)
	}
	if want := "parley export --endpoints endpoints.yml --minimum-timestamp 1700000045.123456 --maximum-timestamp 1700000200"; m[1] != want {
		t.Fatalf("resume command %q, want %q", m[1], want)
	}
	// Resume with a broker that works, writing to the same file.
	if err := os.WriteFile(filepath.Join(dir, "working.yml"), []byte("tracker_store:\n  type: sql\n  db: rasa.db\nevent_broker:\n  type: file\n  path: out.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(strings.Replace(m[1], "endpoints.yml", "working.yml", 1))[1:]
	if out, err := run(t, dir, nil, args...); err != nil || !strings.Contains(out, "Successfully published 54 events") {
		t.Fatalf("resume %v: %v\n%s", args, err, out)
	}
	want := exportedFixtures(t)
	if got := fileLines(t, filepath.Join(dir, "out.log")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after resuming, out.log has %d lines:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestExportCommandProgress(t *testing.T) {
	dir := exportDir(t, "  type: file\n  path: out.log\n")
	out, err := run(t, dir, nil, "export", "--progress", "always")
	if err != nil || !strings.Contains(out, "events: 100%|") || !strings.Contains(out, "84/84") {
		t.Fatalf("--progress always: %v\n%q", err, out)
	}
	old := stderrIsTerminal
	defer func() { stderrIsTerminal = old }()
	stderrIsTerminal = func() bool { return true }
	if out, err := run(t, dir, nil, "export"); err != nil || !strings.Contains(out, "84/84") {
		t.Fatalf("--progress auto on a terminal: %v\n%q", err, out)
	}
	if out, err := run(t, dir, nil, "export", "--progress", "never"); err != nil || strings.Contains(out, "84/84") {
		t.Fatalf("--progress never: %v\n%q", err, out)
	}
	if _, err := run(t, dir, nil, "export", "--progress", "sometimes"); err == nil {
		t.Fatal("--progress sometimes accepted")
	}
}

func TestExportCommandErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, yml string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("no_tracker.yml", "event_broker:\n  type: file\n")
	write("no_broker.yml", "tracker_store:\n  type: sql\n")
	write("redis.yml", "tracker_store:\n  type: redis\nevent_broker:\n  type: file\n")
	write("ok.yml", "tracker_store:\n  type: sql\n  db: missing.db\nevent_broker:\n  type: file\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--endpoints", "no_tracker.yml"}, "could not find a `tracker_store` section"},
		{[]string{"--endpoints", "no_broker.yml"}, "could not find an `event_broker` section"},
		{[]string{"--endpoints", "redis.yml"}, "the redis tracker store is not supported"},
		{[]string{"--endpoints", "ok.yml"}, "missing.db"},
		{[]string{"--endpoints", "ok.yml", "--minimum-timestamp", "5", "--maximum-timestamp", "4"}, "maximum timestamp '4' is smaller than minimum timestamp '5'"},
		{[]string{"--endpoints", "ok.yml", "--minimum-timestamp", "yesterday"}, `--minimum-timestamp "yesterday": not a number`},
	}
	for _, tt := range tests {
		out, err := run(t, dir, nil, append([]string{"export"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("export %v: %v\n%s", tt.args, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("export created the missing tracker database")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"endpoints.yml": "endpoints.yml", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "a,b": "a,b"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
