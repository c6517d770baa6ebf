package export_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/broker/file"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/export"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/progress"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/internal/testenv"
	"github.com/parleyhq/parley/tracker"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fixture is one line of the shared fixtures: its conversation, timestamp
// and the bytes `rasa export` publishes for it.
type fixture struct {
	sender   string
	ts       float64
	exported string
}

// exportedLine turns Rasa's live bytes {"sender_id": "x", REST} into the
// exported form {REST, "sender_id": "x"} by text, independently of the
// event package.
func exportedLine(t *testing.T, rasa string) (string, string) {
	t.Helper()
	m := regexp.MustCompile(`^\{("sender_id": "[^"]*"), (.*)\}$`).FindStringSubmatch(rasa)
	if m == nil {
		t.Fatalf("unexpected fixture line %s", rasa)
	}
	sender := strings.TrimSuffix(strings.TrimPrefix(m[1], `"sender_id": "`), `"`)
	return sender, "{" + m[2] + ", " + m[1] + "}"
}

// loadFixtures pairs each fixture event with what `rasa export` publishes
// for it once stored: testdata/rasa_export.ndjson, written by Rasa's own
// event classes (gen_rasa_export.py).
func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	data, err := os.ReadFile("testdata/rasa_export.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(fixtures.RasaBytes()) {
		t.Fatalf("rasa_export.ndjson has %d lines for %d fixture events", len(lines), len(fixtures.RasaBytes()))
	}
	var out []fixture
	for i, line := range fixtures.RasaBytes() {
		sender, _ := exportedLine(t, string(line))
		exp := lines[i]
		ev, err := event.Parse(fixtures.Events()[i])
		if err != nil {
			t.Fatal(err)
		}
		ts, _ := ev.Timestamp()
		out = append(out, fixture{sender: sender, ts: ts, exported: exp})
	}
	return out
}

// fill stores the fixture events, conversation by conversation.
func fill(t *testing.T, s tracker.Store) {
	t.Helper()
	for _, line := range fixtures.Events() {
		ev, err := event.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		if err := tracker.Append(ctxT(t), s, ev.SenderID, ev); err != nil {
			t.Fatal(err)
		}
	}
}

var storeKinds = []struct {
	name string
	open func(t *testing.T) tracker.Store
}{
	{"memory", func(*testing.T) tracker.Store { return tracker.NewMemoryStore() }},
	{"sqlite", func(t *testing.T) tracker.Store {
		s, err := tracker.OpenSQL(context.Background(), tracker.Config{
			Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "rasa.db")}, Table: "events",
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(t *testing.T) tracker.Store {
		dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
		table := "exp_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
		s, err := tracker.OpenSQL(context.Background(), tracker.Config{
			Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.Postgres, Host: dsn}, Table: table,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = s.DB().Exec("DROP TABLE IF EXISTS " + table)
			_, _ = s.DB().Exec("DROP TABLE IF EXISTS " + table + "_parley_idempotency")
			s.Close()
		})
		return s
	}},
}

func forEachStore(t *testing.T, fn func(t *testing.T, s tracker.Store)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(t)
			fill(t, s)
			fn(t, s)
		})
	}
}

func fileBroker(t *testing.T) (*file.Broker, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.log")
	b, err := file.Open(file.Config{Path: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b, path
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func f64(v float64) *float64 { return &v }

// TestExportToFile: the file broker gets exactly the events of the range,
// in rasa export's bytes, for every filter combination.
func TestExportToFile(t *testing.T) {
	fx := loadFixtures(t)
	tests := []struct {
		name string
		opts export.Options
		keep func(f fixture) bool
	}{
		{"all", export.Options{}, func(fixture) bool { return true }},
		{"range", export.Options{MinTimestamp: f64(fx[10].ts), MaxTimestamp: f64(fx[50].ts)},
			func(f fixture) bool { return f.ts >= fx[10].ts && f.ts < fx[50].ts }},
		{"min only", export.Options{MinTimestamp: f64(fx[80].ts)}, func(f fixture) bool { return f.ts >= fx[80].ts }},
		{"max only", export.Options{MaxTimestamp: f64(fx[3].ts)}, func(f fixture) bool { return f.ts < fx[3].ts }},
		{"conversations", export.Options{ConversationIDs: []string{"user-42", "default", "user-42"}},
			func(f fixture) bool { return f.sender == "user-42" || f.sender == "default" }},
		{"conversation and range", export.Options{ConversationIDs: []string{"c7b9e2a0-5d1f-4c3e-9a8b-123456789abc"}, MinTimestamp: f64(1700000100)},
			func(f fixture) bool { return f.sender == "c7b9e2a0-5d1f-4c3e-9a8b-123456789abc" && f.ts >= 1700000100 }},
	}
	forEachStore(t, func(t *testing.T, s tracker.Store) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b, path := fileBroker(t)
				o := tt.opts
				o.Store, o.Broker, o.BatchSize = s, b, 7
				res, err := export.Run(ctxT(t), o)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, f := range fx {
					if tt.keep(f) {
						want = append(want, f.exported)
					}
				}
				got := readLines(t, path)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("file has %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
				}
				if res.Published != int64(len(want)) || res.Selected != res.Published || res.Counted != res.Published {
					t.Errorf("result %+v, want %d published", res, len(want))
				}
			})
		}
	})
}

func TestExportHeadersAndIDs(t *testing.T) {
	forEachStore(t, func(t *testing.T, s tracker.Store) {
		rec := brokertest.NewRecorder()
		res, err := export.Run(ctxT(t), export.Options{Store: s, Broker: rec})
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(res.ProcessID) {
			t.Fatalf("process id %q is not a uuid4 hex", res.ProcessID)
		}
		evs := rec.Events()
		if len(evs) != 84 || res.Conversations != 3 {
			t.Fatalf("published %d events from %d conversations", len(evs), res.Conversations)
		}
		ids := map[string]bool{}
		for _, ev := range evs {
			if ev.Headers[export.ProcessIDHeader] != res.ProcessID || len(ev.Headers) != 1 {
				t.Fatalf("headers %v", ev.Headers)
			}
			if ev.ID == "" || ids[ev.ID] {
				t.Fatalf("event id %q missing or repeated", ev.ID)
			}
			ids[ev.ID] = true
			if !bytes.HasSuffix(ev.RasaJSON(), []byte(`"sender_id": "`+ev.SenderID+`"}`)) {
				t.Fatalf("sender_id is not last: %s", ev.RasaJSON())
			}
		}
		// A second run has another process id.
		res2, err := export.Run(ctxT(t), export.Options{Store: s, Broker: brokertest.NewRecorder()})
		if err != nil || res2.ProcessID == res.ProcessID {
			t.Fatalf("second run: %v, process id %q", err, res2.ProcessID)
		}
	})
}

func TestExportOffset(t *testing.T) {
	forEachStore(t, func(t *testing.T, s tracker.Store) {
		for _, tc := range []struct {
			offset int64
			min    float64
			first  string // the first exported line starts with this
		}{
			{3600, 1700000000, `{"event": "session_started", "timestamp": 1700003600.123456, `},
			{3600, 1700000004, `{"event": "user", "timestamp": 1700003604.623456, `},
			{-86400, 1700000124, `{"event": "bot", "timestamp": 1699913724.623456, `},
		} {
			b, path := fileBroker(t)
			// The filter applies to the original timestamps.
			if _, err := export.Run(ctxT(t), export.Options{Store: s, Broker: b, OffsetSeconds: tc.offset, MinTimestamp: f64(tc.min)}); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, path)
			if len(lines) == 0 || !strings.HasPrefix(lines[0], tc.first) {
				t.Errorf("offset %d from %v: first line %q, want prefix %s", tc.offset, tc.min, lines, tc.first)
			}
		}
	})
}

func TestExportErrors(t *testing.T) {
	s := tracker.NewMemoryStore()
	rec := brokertest.NewRecorder()
	if _, err := export.Run(ctxT(t), export.Options{Store: s, Broker: rec}); !errors.Is(err, export.ErrNoConversations) {
		t.Errorf("empty store: %v", err)
	}
	fill(t, s)
	res, err := export.Run(ctxT(t), export.Options{Store: s, Broker: rec, ConversationIDs: []string{"nope", "neither"}})
	if !errors.Is(err, export.ErrNoOverlap) || strings.Join(res.Missing, ",") != "nope,neither" {
		t.Errorf("no overlap: %v, missing %q", err, res.Missing)
	}
	res, err = export.Run(ctxT(t), export.Options{Store: s, Broker: rec, ConversationIDs: []string{"nope", "default"}})
	if err != nil || strings.Join(res.Missing, ",") != "nope" || res.Published != 28 {
		t.Errorf("partial overlap: %v, %+v", err, res)
	}
	_, err = export.Run(ctxT(t), export.Options{Store: s, Broker: rec, MinTimestamp: f64(5), MaxTimestamp: f64(4)})
	if !errors.Is(err, export.ErrBadRange) || !strings.Contains(err.Error(), "maximum timestamp '4.0' is smaller than minimum timestamp '5.0'") {
		t.Errorf("bad range: %v", err)
	}
	res, err = export.Run(ctxT(t), export.Options{Store: s, Broker: rec, MinTimestamp: f64(1e12)})
	if err != nil || res.Published != 0 {
		t.Errorf("empty range: %v, %+v", err, res)
	}
}

// failAfter accepts the first n events, then fails every publish.
type failAfter struct {
	broker.Broker
	mu sync.Mutex
	n  int
}

func (f *failAfter) Publish(ctx context.Context, evs ...event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(evs) > f.n {
		return errors.New("broker went away")
	}
	f.n -= len(evs)
	return f.Broker.Publish(ctx, evs...)
}

// interleaved stores two conversations whose events alternate in time,
// where Rasa's per-conversation order makes a resumed export skip events.
func interleaved(t *testing.T) tracker.Store {
	s := tracker.NewMemoryStore()
	for i := 1; i <= 12; i++ {
		id := "a"
		if i%2 == 0 {
			id = "b"
		}
		ev, err := event.Parse([]byte(fmt.Sprintf(`{"event": "slot", "timestamp": %d.5, "name": "n", "value": %d}`, i, i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := tracker.Append(ctxT(t), s, id, ev); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestExportResume: a broker failing mid-run stops the export with the
// timestamp to resume from; resuming from it completes the set.
func TestExportResume(t *testing.T) {
	for _, batch := range []int{1, 2, 5} {
		t.Run("batch "+strconv.Itoa(batch), func(t *testing.T) {
			s := interleaved(t)
			first := brokertest.NewRecorder()
			_, err := export.Run(ctxT(t), export.Options{
				Store: s, Broker: &failAfter{Broker: first, n: 5}, BatchSize: batch,
				RetryFor: 50 * time.Millisecond, Backoff: broker.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond},
				Logger: slog.New(slog.DiscardHandler),
			})
			var pe *export.PublishError
			if !errors.As(err, &pe) {
				t.Fatalf("Run = %v, want a *PublishError", err)
			}
			if pe.Published != int64(len(first.Events())) || pe.ResumeFrom == "" || !strings.Contains(pe.Error(), "broker went away") {
				t.Fatalf("PublishError %+v after %d events", pe, len(first.Events()))
			}
			from, err := strconv.ParseFloat(pe.ResumeFrom, 64)
			if err != nil {
				t.Fatal(err)
			}
			second := brokertest.NewRecorder()
			res, err := export.Run(ctxT(t), export.Options{Store: s, Broker: second, MinTimestamp: &from})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, ev := range append(first.Events(), second.Events()...) {
				v, _ := ev.Get("value")
				seen[v.NumberText()]++
			}
			for i := 1; i <= 12; i++ {
				if seen[strconv.Itoa(i)] == 0 {
					t.Errorf("event %d was never exported", i)
				}
			}
			// Only the batch in flight may go twice.
			if dup := len(first.Events()) + int(res.Published) - 12; dup < 0 || dup > batch {
				t.Errorf("%d duplicates with batch size %d", dup, batch)
			}
		})
	}
}

// failingScan fails reading after n events.
type failingScan struct {
	tracker.Store
	n int
}

func (f *failingScan) Scan(ctx context.Context, q tracker.Query, fn func(event.Event) error) error {
	i := 0
	return f.Store.Scan(ctx, q, func(ev event.Event) error {
		if i++; i > f.n {
			return errors.New("disk read error")
		}
		return fn(ev)
	})
}

func TestExportStoreFailure(t *testing.T) {
	s := &failingScan{Store: interleaved(t), n: 7}
	rec := brokertest.NewRecorder()
	_, err := export.Run(ctxT(t), export.Options{Store: s, Broker: rec, BatchSize: 3})
	var pe *export.PublishError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "disk read error") {
		t.Fatalf("Run = %v", err)
	}
	// 6 confirmed (two batches), event 7 read but not published: resume
	// from event 7's timestamp.
	if pe.Published != 6 || pe.ResumeFrom != "7.5" || len(rec.Events()) != 6 {
		t.Fatalf("PublishError %+v, %d published", pe, len(rec.Events()))
	}
}

func TestExportProgress(t *testing.T) {
	s := tracker.NewMemoryStore()
	fill(t, s)
	var buf bytes.Buffer
	bar := progress.New(&buf, progress.Options{Label: "events", Unit: "events", Interval: time.Nanosecond})
	if _, err := export.Run(ctxT(t), export.Options{Store: s, Broker: brokertest.NewRecorder(), Progress: bar, BatchSize: 20}); err != nil {
		t.Fatal(err)
	}
	bar.Finish()
	out := buf.String()
	for _, want := range []string{"events:   0%|", "20/84", "100%|", "84/84"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%q", want, out)
		}
	}
}
