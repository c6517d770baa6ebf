package tracker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/tracker"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		yml     string
		want    tracker.Config // Where not compared
		wantErr string         // substring; "" = no error
		warn    string         // substring of a warning
	}{
		{name: "no section", yml: "event_broker:\n  type: file\n", want: tracker.Config{Type: tracker.TypeMemory}},
		{name: "no type", yml: "tracker_store:\n  db: x.db\n", want: tracker.Config{Type: tracker.TypeMemory}, warn: "db: unknown key"},
		{name: "memory", yml: "tracker_store:\n  type: memory\n", want: tracker.Config{Type: tracker.TypeMemory}},
		{name: "in_memory", yml: "tracker_store:\n  type: In_Memory\n", want: tracker.Config{Type: tracker.TypeMemory}},
		{
			name: "sql defaults", yml: "tracker_store:\n  type: SQL\n",
			want: tracker.Config{Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.SQLite, DB: "rasa.db"}, Table: "events", PoolSize: 32},
		},
		{
			name: "postgres", yml: "tracker_store:\n  type: sql\n  dialect: postgresql\n  url: db.internal\n  port: 5433\n  db: tracker\n  username: rasa\n  password: s3cret\n  login_db: postgres\n  query:\n    sslmode: require\n  table: rasa_events\n",
			want: tracker.Config{Type: tracker.TypeSQL, SQL: sqldb.Options{
				Dialect: sqldb.Postgres, Host: "db.internal", Port: 5433, DB: "tracker", Username: "rasa", Password: "s3cret",
				Query: map[string]string{"sslmode": "require"},
			}, LoginDB: "postgres", Table: "rasa_events", PoolSize: 32},
		},
		{
			name: "login_db on sqlite", yml: "tracker_store:\n  type: sql\n  login_db: postgres\n",
			want: tracker.Config{Type: tracker.TypeSQL, SQL: sqldb.Options{Dialect: sqldb.SQLite, DB: "rasa.db"}, LoginDB: "postgres", Table: "events", PoolSize: 32},
			warn: "login_db: only used with the postgresql dialect",
		},
		{name: "redis", yml: "tracker_store:\n  type: redis\n  url: localhost\n", wantErr: "test.yml:2: tracker_store.type: the redis tracker store is not supported by parley (supported: sql with sqlite or postgresql, memory)"},
		{name: "mongod", yml: "tracker_store:\n  type: mongod\n", wantErr: "the mongod tracker store is not supported"},
		{name: "dynamo", yml: "tracker_store:\n  type: dynamo\n", wantErr: "the dynamo tracker store is not supported"},
		{name: "class path", yml: "tracker_store:\n  type: my_module.MyStore\n", wantErr: `custom tracker store class "my_module.MyStore" cannot be loaded by parley`},
		{name: "unknown", yml: "tracker_store:\n  type: cassandra\n", wantErr: `type "cassandra" cannot be loaded`},
		{name: "bad dialect", yml: "tracker_store:\n  type: sql\n  dialect: mysql\n", wantErr: "test.yml:3: tracker_store.dialect: unsupported dialect"},
		{name: "bad port", yml: "tracker_store:\n  type: sql\n  port: abc\n", wantErr: `tracker_store.port: "abc" is not a number`},
		{name: "bad table", yml: "tracker_store:\n  type: sql\n  table: \"events; drop\"\n", wantErr: "tracker_store.table"},
		{name: "bad pool", yml: "tracker_store:\n  type: sql\n  pool_size: 0\n", wantErr: "tracker_store.pool_size: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := config.Parse("test.yml", []byte(tt.yml))
			if err != nil {
				t.Fatal(err)
			}
			got, err := tracker.ConfigFromEndpoints(ep)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				wantType := strings.Contains(tt.wantErr, "cannot be loaded") || strings.Contains(tt.wantErr, "not supported")
				if wantType != errors.Is(err, tracker.ErrUnsupportedType) {
					t.Errorf("errors.Is(%v, ErrUnsupportedType) = %v", err, !wantType)
				}
				if _, cerr := tracker.CheckConfig(ep); cerr == nil {
					t.Error("CheckConfig accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Where = ""
			if !equalConfig(got, tt.want) {
				t.Fatalf("config = %+v\nwant      %+v", got, tt.want)
			}
			notes, err := tracker.CheckConfig(ep)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(notes, "\n")
			if !strings.HasPrefix(joined, "tracker store: ") || (tt.warn != "" && !strings.Contains(joined, tt.warn)) {
				t.Errorf("notes = %q, want a warning containing %q", notes, tt.warn)
			}
			if strings.Contains(joined, "s3cret") {
				t.Errorf("notes leak the password: %q", notes)
			}
		})
	}
}

func equalConfig(a, b tracker.Config) bool {
	if len(a.SQL.Query) != len(b.SQL.Query) {
		return false
	}
	for k, v := range a.SQL.Query {
		if b.SQL.Query[k] != v {
			return false
		}
	}
	a.SQL.Query, b.SQL.Query = nil, nil
	return a.Type == b.Type && a.SQL.Dialect == b.SQL.Dialect && a.SQL.Host == b.SQL.Host && a.SQL.Port == b.SQL.Port &&
		a.SQL.DB == b.SQL.DB && a.SQL.Username == b.SQL.Username && a.SQL.Password == b.SQL.Password &&
		a.LoginDB == b.LoginDB && a.Table == b.Table && a.PoolSize == b.PoolSize
}

// The built-in defaults (no endpoints.yml) keep trackers in SQLite rasa.db.
func TestDefaultConfig(t *testing.T) {
	ep, err := config.Parse(config.EmbeddedName, config.DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tracker.ConfigFromEndpoints(ep)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != tracker.TypeSQL || c.SQL.Dialect != sqldb.SQLite || c.SQL.DB != "rasa.db" || c.Table != "events" {
		t.Fatalf("default tracker store = %+v", c)
	}
}

func TestOpenMemory(t *testing.T) {
	s, err := tracker.Open(context.Background(), tracker.Config{Type: tracker.TypeMemory}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*tracker.MemoryStore); !ok {
		t.Fatalf("Open(memory) = %T", s)
	}
	if _, err := tracker.Open(context.Background(), tracker.Config{Type: "redis"}, nil); !errors.Is(err, tracker.ErrUnsupportedType) {
		t.Fatalf("Open(redis) = %v", err)
	}
}
