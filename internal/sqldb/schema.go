package sqldb

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
)

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidTable reports whether name is a plain SQL table name: letters,
// digits and underscores, at most 63 bytes (PostgreSQL's limit). Table
// names are spliced into statements, so nothing else is accepted.
func ValidTable(name string) bool { return plainName.MatchString(name) }

// CreateIfMissing runs ddl, a CREATE ... IF NOT EXISTS statement. On
// PostgreSQL two processes running it at once can collide on the catalog
// ("duplicate key"): the object exists then, which is what was asked.
func CreateIfMissing(ctx context.Context, db *sql.DB, d Dialect, ddl string) error {
	_, err := db.ExecContext(ctx, ddl)
	if err != nil && d == Postgres && strings.Contains(err.Error(), "duplicate key") {
		return nil
	}
	return err
}
