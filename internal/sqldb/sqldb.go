// Package sqldb opens the SQL databases parley writes to (event broker,
// tracker store, consumer offsets) from Rasa's endpoints.yml keys, with the
// settings each dialect needs: SQLite (modernc.org/sqlite, pure Go) in WAL
// mode with full fsync, PostgreSQL through pgx.
package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/parleyhq/parley/config"
)

// Dialect is a supported SQL dialect.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgresql"
)

// Options are Rasa's SQL keys (the SQL event broker's and the SQL tracker
// store's).
type Options struct {
	Dialect  Dialect
	Host     string // endpoints.yml url or host; a postgres:// URL is used as the whole DSN
	Port     int
	DB       string // database name, or the SQLite file path
	Username string
	Password string
	Query    map[string]string // extra driver parameters (e.g. sslmode)
}

// FromSection reads dialect, url/host, port, db, username, password and
// query from sec. defaultDB is Rasa's default for db (events.db for the
// broker, rasa.db for the tracker store).
func FromSection(sec *config.Section, defaultDB string) Options {
	o := Options{
		Host:     sec.String("url", ""),
		Port:     sec.Int("port", 0),
		DB:       sec.String("db", defaultDB),
		Username: sec.String("username", ""),
		Password: sec.String("password", ""),
	}
	if h := sec.String("host", ""); h != "" {
		o.Host = h
	}
	raw := sec.String("dialect", "sqlite")
	d, ok := ParseDialect(raw)
	if !ok {
		sec.Errorf("dialect", "unsupported dialect %q (supported: sqlite, postgresql)", raw)
	}
	o.Dialect = d
	if q := sec.Sub("query"); q != nil {
		o.Query = map[string]string{}
		for _, k := range q.Keys() {
			o.Query[k] = q.String(k, "")
		}
		if err := q.Err(); err != nil {
			sec.Errorf("query", "%v", err)
		}
	}
	if o.Port < 0 || o.Port > 65535 {
		sec.Errorf("port", "%d is not a TCP port", o.Port)
	}
	return o
}

// ParseDialect accepts SQLAlchemy's dialect names: sqlite, postgresql,
// postgres and driver-qualified forms such as postgresql+psycopg2.
func ParseDialect(s string) (Dialect, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "", "sqlite", "sqlite3":
		return SQLite, true
	case "postgresql", "postgres", "pg":
		return Postgres, true
	}
	return "", false
}

// DSN returns the driver name and data source name.
func (o Options) DSN() (driver, dsn string) {
	if o.Dialect == SQLite {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)") // Publish means durable: fsync the WAL on commit
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(ON)")
		q.Set("_txlock", "immediate") // take the write lock at BEGIN: no upgrade deadlocks
		for k, v := range o.Query {
			q.Set(k, v)
		}
		db := o.DB
		if db == "" || db == ":memory:" {
			db = ":memory:"
		}
		return "sqlite", "file:" + db + "?" + q.Encode()
	}
	if strings.Contains(o.Host, "://") {
		return "pgx", o.Host
	}
	host, port := o.Host, o.Port
	// Rasa accepts url: host:port (its get_db_url splits it, and the port
	// in the url wins over the port key).
	if h, p, err := net.SplitHostPort(host); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			host, port = h, n
		}
	}
	if host == "" {
		host = "localhost"
	}
	if port == 0 {
		port = 5432
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/" + o.DB}
	if o.Username != "" {
		if o.Password != "" {
			u.User = url.UserPassword(o.Username, o.Password)
		} else {
			u.User = url.User(o.Username)
		}
	}
	q := url.Values{}
	keys := make([]string, 0, len(o.Query))
	for k := range o.Query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Set(k, o.Query[k])
	}
	u.RawQuery = q.Encode()
	return "pgx", u.String()
}

// Describe names the database for logs, without the password.
func (o Options) Describe() string {
	if o.Dialect == SQLite {
		return "sqlite:" + o.DB
	}
	_, dsn := o.DSN()
	return config.RedactURL(dsn)
}

// Open opens and pings the database.
func Open(ctx context.Context, o Options) (*sql.DB, error) {
	driver, dsn := o.DSN()
	if o.Dialect == SQLite {
		if err := createSQLiteFile(o.DB); err != nil {
			return nil, fmt.Errorf("open %s: %w", o.Describe(), err)
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", o.Describe(), err)
	}
	if o.Dialect == SQLite {
		// One connection serializes writers in-process, which SQLite needs
		// anyway, and lets an in-memory database be shared.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", o.Describe(), err)
	}
	return db, nil
}

// Placeholder returns the n-th (1-based) bind parameter for the dialect.
func (d Dialect) Placeholder(n int) string {
	if d == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}
