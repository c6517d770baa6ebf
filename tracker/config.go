package tracker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/internal/sqldb"
)

// The tracker store types parley supports (endpoints.yml tracker_store
// type, case-insensitive as in Rasa).
const (
	TypeSQL    = "sql"
	TypeMemory = "memory"
)

// Defaults of the tracker_store keys.
const (
	// DefaultDB is Rasa's default db for the SQL tracker store.
	DefaultDB = "rasa.db"
	// DefaultTable is Rasa's table name.
	DefaultTable = "events"
	// DefaultPoolSize is the PostgreSQL connection pool size.
	DefaultPoolSize = 32
)

// ErrUnsupportedType is returned for a tracker_store type parley does not
// implement (redis, mongod, dynamo, custom classes).
var ErrUnsupportedType = errors.New("unsupported tracker store type")

// Config is the tracker_store section of endpoints.yml.
type Config struct {
	// Type is TypeSQL or TypeMemory. Rasa's rule: no section, or no type,
	// means the in-memory store; memory and in_memory name it explicitly.
	Type string
	// SQL holds Rasa's keys: dialect (sqlite, default; postgresql), url (or
	// host), port, db (default rasa.db), username, password, query.
	SQL sqldb.Options
	// LoginDB (Rasa key login_db, PostgreSQL only) is the database to
	// connect to first to create db when it does not exist, as Rasa does.
	LoginDB string
	// Table is the table used (parley key table, default events, Rasa's
	// name). The SQL event broker also writes a table called events: when
	// both use one PostgreSQL database, give one of them another name.
	Table string
	// PoolSize caps PostgreSQL connections (parley key pool_size, default
	// 32); each conversation being written holds one while it publishes.
	PoolSize int
	// Where is the section's place for messages ("endpoints.yml line 7"),
	// or "" for the built-in default.
	Where string
}

// ParseConfig decodes and validates a tracker_store section without I/O;
// sec may be nil (no section: the in-memory store). Errors name the file,
// line and key.
func ParseConfig(sec *config.Section) (Config, error) {
	if sec == nil {
		return Config{Type: TypeMemory}, nil
	}
	c := Config{Where: fmt.Sprintf("%s line %d", sec.File(), sec.Line())}
	unsupported := false
	switch t := sec.Type(); t {
	case "", "memory", "in_memory", "inmemory":
		c.Type = TypeMemory
		sec.WarnUnused(TypeMemory)
	case TypeSQL:
		c.Type = TypeSQL
		c.SQL = sqldb.FromSection(sec, DefaultDB)
		c.LoginDB = sec.String("login_db", "")
		c.Table = sec.String("table", DefaultTable)
		c.PoolSize = sec.Int("pool_size", DefaultPoolSize)
		if !sqldb.ValidTable(c.Table) {
			sec.Errorf("table", "%q is not a plain SQL table name", c.Table)
		}
		if c.PoolSize < 1 {
			sec.Errorf("pool_size", "must be at least 1")
		}
		if c.LoginDB != "" && c.SQL.Dialect != sqldb.Postgres {
			sec.Warnf("login_db", "only used with the postgresql dialect, ignored (as Rasa does)")
		}
		if c.SQL.Dialect == sqldb.SQLite && c.SQL.DB == "" {
			sec.Errorf("db", "must name the SQLite file")
		}
		sec.WarnUnused(TypeSQL)
	case "redis", "mongod", "dynamo":
		unsupported = true
		sec.Errorf("type", "the %s tracker store is not supported by parley (supported: sql with sqlite or postgresql, memory)", t)
	default:
		kind := "type"
		if strings.Contains(t, ".") {
			kind = "custom tracker store class"
		}
		unsupported = true
		sec.Errorf("type", "%s %q cannot be loaded by parley (supported: sql with sqlite or postgresql, memory)", kind, sec.String("type", ""))
	}
	if err := sec.Err(); err != nil {
		if unsupported {
			err = typeError{err}
		}
		return Config{}, err
	}
	return c, nil
}

// typeError keeps the file:line:key message of an unsupported type and
// lets callers match ErrUnsupportedType.
type typeError struct{ error }

func (e typeError) Unwrap() []error { return []error{e.error, ErrUnsupportedType} }

// ConfigFromEndpoints reads the tracker_store section of ep (the in-memory
// store when it is absent, as in Rasa).
func ConfigFromEndpoints(ep *config.Endpoints) (Config, error) {
	return ParseConfig(ep.Section("tracker_store"))
}

// CheckConfig validates ep's tracker_store section without I/O, for
// `parley config check`; it returns notes worth printing (the store chosen
// and warnings).
func CheckConfig(ep *config.Endpoints) ([]string, error) {
	sec := ep.Section("tracker_store")
	c, err := ParseConfig(sec)
	if err != nil {
		return nil, err
	}
	notes := []string{"tracker store: " + c.Describe()}
	if sec != nil {
		notes = append(notes, sec.Warnings()...)
	}
	return notes, nil
}

// Describe names the store for logs and notes, without secrets.
func (c Config) Describe() string {
	if c.Type != TypeSQL {
		return "memory (conversations are lost on restart)"
	}
	d := "sql " + c.SQL.Describe() + " table " + c.Table
	if c.Where != "" {
		d += " (" + c.Where + ")"
	}
	return d
}

// Open opens the store c describes.
func Open(ctx context.Context, c Config, log *slog.Logger) (Store, error) {
	switch c.Type {
	case TypeMemory, "":
		return NewMemoryStore(), nil
	case TypeSQL:
		return OpenSQL(ctx, c, log)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedType, c.Type)
}

// createDatabase connects to LoginDB and creates DB if it does not exist,
// as Rasa's SQLTrackerStore does with login_db.
func createDatabase(ctx context.Context, c Config) error {
	login := c.SQL
	if strings.Contains(login.Host, "://") {
		u, err := url.Parse(login.Host)
		if err != nil {
			return fmt.Errorf("login_db: bad url: %w", err)
		}
		target := strings.TrimPrefix(u.Path, "/")
		if target != "" {
			c.SQL.DB = target
		}
		u.Path = "/" + c.LoginDB
		login.Host = u.String()
	}
	login.DB = c.LoginDB
	db, err := sqldb.Open(ctx, login)
	if err != nil {
		return fmt.Errorf("login_db %q: %w", c.LoginDB, err)
	}
	defer db.Close()
	var one int
	err = db.QueryRowContext(ctx, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", c.SQL.DB).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("login_db %q: look up database %q: %w", c.LoginDB, c.SQL.DB, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(c.SQL.DB)); err != nil {
		// Another process may have created it meanwhile.
		if !strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("login_db %q: create database %q: %w", c.LoginDB, c.SQL.DB, err)
		}
	}
	return nil
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
