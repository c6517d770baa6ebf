package privacy

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestValuesSurviveRestart checks learned values kept in the SQL store are
// known to a new Anonymizer (another node, or the next start), and that
// the store keeps at most max_values per conversation and none past the
// TTL.
func TestValuesSurviveRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testValuesSurviveRestart(t, sqldb.Options{Dialect: sqldb.SQLite, DB: filepath.Join(t.TempDir(), "rasa.db")}, DefaultValuesTable)
	})
	t.Run("postgresql", func(t *testing.T) {
		dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
		table := fmt.Sprintf("privacy_values_%d", time.Now().UnixNano())
		testValuesSurviveRestart(t, sqldb.Options{Dialect: sqldb.Postgres, Host: dsn}, table)
		st, _ := openSQLStore(context.Background(), sqldb.Options{Dialect: sqldb.Postgres, Host: dsn}, table, time.Hour, 1)
		if db, err := st.conn(context.Background()); err == nil {
			db.Exec("DROP TABLE " + table)
			st.Close()
		}
	})
}

func testValuesSurviveRestart(t *testing.T, opts sqldb.Options, table string) {
	ctx := context.Background()
	c := testConfig(t, testYAML)
	c.MaxValues = 2
	open := func() (*Anonymizer, *SQLStore) {
		st, err := openSQLStore(ctx, opts, table, c.ValueTTL, c.MaxValues)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(c, Env{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		return a, st
	}
	a, _ := open()
	clock := time.Now().Add(-time.Minute)
	a.vals.now = func() time.Time { return clock }
	b := a.Broker(c.Set(0), nil)
	for _, v := range []string{"old@example.com", "jane@example.com"} {
		if _, err := b.Anonymize(ctx, []event.Event{mustEvent(t, `{"sender_id":"c","event":"slot","name":"email","value":"`+v+`"}`)}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second)
	}
	if _, err := b.Anonymize(ctx, []event.Event{mustEvent(t, `{"sender_id":"c","event":"entities","entities":[{"entity":"person","value":"Jane Roe"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	a2, st2 := open()
	defer a2.Close()
	got, err := st2.Load(ctx, "c", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("store holds %v, want the 2 newest values", got)
	}
	out, err := a2.Broker(c.Set(0), nil).Anonymize(ctx, []event.Event{mustEvent(t, `{"sender_id":"c","event":"user","text":"I am Jane Roe, JANE@example.com"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out[0].RasaJSON()); s != `{"sender_id": "c", "event": "user", "text": "I am `+c.Sets[DefaultSet].byEntity["person"].Anonymization.apply("Jane Roe")+`, EMAIL"}` {
		t.Errorf("after a restart: %s", s)
	}
	if got, _ := st2.Load(ctx, "c", time.Now().Add(time.Hour)); len(got) != 0 {
		t.Errorf("values seen before the TTL window are loaded: %v", got)
	}
}
