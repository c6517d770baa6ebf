package sql

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// A table dropped while parley runs is created again (as at Open), so the
// spool's next retry goes through; the failed write stays retriable, never
// dead-lettered (issue 21, the SQL side of a destination that is not
// there).

// recreateIfMissing creates the table again when err says it is missing.
func (b *Broker) recreateIfMissing(ctx context.Context, err error) {
	if !isUndefinedTable(err) {
		return
	}
	b.log.Warn("sql broker: the events table is gone; creating it again (the events are retried)", "table", b.cfg.Table)
	if cerr := CreateTable(ctx, b.db, b.cfg.DB.Dialect, b.cfg.Table); cerr != nil {
		b.log.Warn("sql broker: could not create the events table again", "table", b.cfg.Table, "err", cerr)
	}
}

// isUndefinedTable recognises PostgreSQL's undefined_table (42P01) and
// SQLite's "no such table".
func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "42P01"
	}
	return err != nil && strings.Contains(err.Error(), "no such table")
}
