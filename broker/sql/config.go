package sql

import (
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
)

// Config is the sql broker's endpoints.yml section.
type Config struct {
	// DB holds Rasa's keys: dialect (sqlite, default; postgresql), url or
	// host, port, db (default events.db), username, password, query.
	DB sqldb.Options
	// Table is the table written (parley key table, default events, Rasa's
	// name).
	Table string
	// Format is the JSON written in data (parley key format: rasa, default,
	// or compact).
	Format event.Format
	// MaxBatch caps the events committed in one transaction (parley key
	// max_batch, default 5000).
	MaxBatch int
	// Writers is the number of transactions committed in parallel (parley
	// key writers; default 1 on SQLite, which has one writer anyway, and 4
	// on PostgreSQL). Concurrent Publish calls may then commit in any
	// order; each call's events stay together and in order.
	Writers int
	// PositionsTable holds, beside Table, the position each spool stream
	// has written, updated in the same transaction as the rows, which
	// makes delivery from the spool exactly once (parley key
	// positions_table, default parley_positions; see docs/reliability.md).
	PositionsTable string
}

// DefaultPositionsTable is the default of positions_table.
const DefaultPositionsTable = "parley_positions"

// ParseConfig decodes and validates a section.
func ParseConfig(sec *config.Section) (Config, error) {
	c := Config{
		DB:       sqldb.FromSection(sec, "events.db"),
		Table:    sec.String("table", "events"),
		MaxBatch: sec.Int("max_batch", 5000),
		Writers:  sec.Int("writers", 0),

		PositionsTable: sec.String("positions_table", DefaultPositionsTable),
	}
	if f, ok := event.ParseFormat(sec.String("format", "rasa")); ok {
		c.Format = f
	} else {
		sec.Errorf("format", "must be rasa or compact")
	}
	if !sqldb.ValidTable(c.Table) {
		sec.Errorf("table", "%q is not a plain SQL table name", c.Table)
	}
	if !sqldb.ValidTable(c.PositionsTable) {
		sec.Errorf("positions_table", "%q is not a plain SQL table name", c.PositionsTable)
	} else if c.PositionsTable == c.Table {
		sec.Errorf("positions_table", "must differ from table (%q): Rasa's events table keeps Rasa's schema", c.Table)
	}
	if c.MaxBatch < 1 {
		sec.Errorf("max_batch", "must be at least 1")
	}
	if c.Writers < 0 || c.Writers > 64 {
		sec.Errorf("writers", "must be between 1 and 64 (0 or absent: the dialect's default)")
	}
	sec.WarnUnused("sql")
	return c, sec.Err()
}
