package sqldb

import (
	"strings"
	"testing"
)

func TestDSN(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Dialect: Postgres, Host: "db", Port: 5433, DB: "rasa", Username: "u", Password: "p@ss"}, "postgres://u:p%40ss@db:5433/rasa"},
		{Options{Dialect: Postgres, Host: "db:6000", Port: 5432, DB: "rasa"}, "postgres://db:6000/rasa"},
		{Options{Dialect: Postgres, DB: "rasa", Query: map[string]string{"sslmode": "require"}}, "postgres://localhost:5432/rasa?sslmode=require"},
		{Options{Dialect: Postgres, Host: "postgres://x:y@h/db?sslmode=disable"}, "postgres://x:y@h/db?sslmode=disable"},
		{Options{Dialect: Postgres, Host: "[::1]:5439", DB: "d"}, "postgres://[::1]:5439/d"},
	}
	for _, c := range cases {
		if _, got := c.o.DSN(); got != c.want {
			t.Errorf("%+v: got %s, want %s", c.o, got, c.want)
		}
	}
	if d, dsn := (Options{Dialect: SQLite, DB: "events.db"}).DSN(); d != "sqlite" || dsn[:15] != "file:events.db?" {
		t.Errorf("sqlite: %s %s", d, dsn)
	}
	for in, want := range map[string]Dialect{"postgresql+psycopg2": Postgres, "SQLite": SQLite, "postgres": Postgres} {
		if got, ok := ParseDialect(in); !ok || got != want {
			t.Errorf("ParseDialect(%q) = %q %v", in, got, ok)
		}
	}
	if _, ok := ParseDialect("mysql"); ok {
		t.Error("mysql accepted")
	}
}

func TestValidTable(t *testing.T) {
	for name, want := range map[string]bool{
		"events": true, "_x1": true, "Events_2026": true, strings.Repeat("a", 63): true,
		"": false, "1events": false, "events;drop": false, "my-table": false, `"q"`: false, strings.Repeat("a", 64): false,
	} {
		if got := ValidTable(name); got != want {
			t.Errorf("ValidTable(%q) = %v, want %v", name, got, want)
		}
	}
}
