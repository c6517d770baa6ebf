package sql

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/groupcommit"
	"github.com/parleyhq/parley/internal/sqldb"
)

func init() {
	broker.Register("sql", func(sec *config.Section) (broker.Opener, error) {
		c, err := ParseConfig(sec)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, env broker.Env) (broker.Broker, error) {
			return Open(ctx, c, env.LoggerOrDefault())
		}, nil
	})
}

// rowsPerStatement bounds one INSERT's VALUES list (two parameters a row,
// well under SQLite's and PostgreSQL's parameter limits).
const rowsPerStatement = 500

// Broker writes events into an SQL table.
type Broker struct {
	db        *stdsql.DB
	cfg       Config
	log       *slog.Logger
	committer *groupcommit.Committer
	closed    atomic.Bool // streams check it; the committer has its own
	closeOnce sync.Once
	closeErr  error

	fullInsert    sync.Once
	fullInsertSQL string
}

var (
	_ broker.Broker     = (*Broker)(nil)
	_ broker.Pinger     = (*Broker)(nil)
	_ broker.Positioned = (*Broker)(nil)
)

// Open connects, creates the table if it does not exist, and starts the
// writer.
func Open(ctx context.Context, c Config, log *slog.Logger) (*Broker, error) {
	if c.Table == "" {
		c.Table = "events"
	}
	if c.MaxBatch < 1 {
		c.MaxBatch = 5000
	}
	if c.PositionsTable == "" {
		c.PositionsTable = DefaultPositionsTable
	}
	db, err := sqldb.Open(ctx, c.DB)
	if err != nil {
		return nil, fmt.Errorf("sql broker: %w", err)
	}
	if err := CreateTable(ctx, db, c.DB.Dialect, c.Table); err != nil {
		db.Close()
		return nil, fmt.Errorf("sql broker: %w", err)
	}
	if err := createPositionsTable(ctx, db, c.DB.Dialect, c.PositionsTable); err != nil {
		db.Close()
		return nil, fmt.Errorf("sql broker: %w", err)
	}
	if c.Writers == 0 {
		c.Writers = 1
		if c.DB.Dialect == sqldb.Postgres {
			c.Writers = 4
		}
	}
	b := &Broker{db: db, cfg: c, log: log}
	b.committer = groupcommit.NewParallel(c.Writers, c.MaxBatch, b.write)
	log.Info("sql event broker ready", "db", c.DB.Describe(), "table", c.Table)
	return b, nil
}

// CreateTable creates Rasa's events table if it is missing, with the DDL
// SQLAlchemy emits for Rasa's model.
func CreateTable(ctx context.Context, db *stdsql.DB, d sqldb.Dialect, table string) error {
	idType := "INTEGER"
	if d == sqldb.Postgres {
		idType = "SERIAL"
	}
	ddl := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (id %s NOT NULL, sender_id VARCHAR(255), data TEXT, PRIMARY KEY (id))", table, idType)
	if err := sqldb.CreateIfMissing(ctx, db, d, ddl); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

// Config returns the broker's configuration.
func (b *Broker) Config() Config { return b.cfg }

// DB returns the database handle, for readers of the same table.
func (b *Broker) DB() *stdsql.DB { return b.db }

// Publish commits evs in one transaction, possibly shared with concurrent
// calls, and returns when it is durable. If ctx ends first Publish returns
// its error, and the events may still be committed.
func (b *Broker) Publish(ctx context.Context, evs ...event.Event) error {
	if err := b.check(evs); err != nil {
		return err
	}
	return b.committer.Submit(ctx, evs)
}

// check refuses what the table cannot hold.
func (b *Broker) check(evs []event.Event) error {
	for _, ev := range evs {
		// Checked at every entry point; this guards the column against
		// events from elsewhere (an export of a store Rasa wrote).
		if err := event.ValidText("sender_id", ev.SenderID); err != nil {
			return broker.Permanent(fmt.Errorf("sql broker: %w", err))
		}
		if b.cfg.DB.Dialect == sqldb.Postgres {
			if n := utf8.RuneCountInString(ev.SenderID); n > 255 {
				return broker.Permanent(fmt.Errorf("sql broker: sender_id of %d characters does not fit Rasa's varchar(255) column", n))
			}
		}
	}
	return nil
}

func (b *Broker) write(batch [][]event.Event) error {
	// Not the callers' contexts: the transaction serves several of them,
	// and an abandoned caller must not fail the others.
	ctx := context.Background()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sql broker: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := b.insert(ctx, tx, batch...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sql broker: commit: %w", err)
	}
	return nil
}

// insert adds the rows of batch to the table in tx.
func (b *Broker) insert(ctx context.Context, tx *stdsql.Tx, batch ...[]event.Event) error {
	args := make([]any, 0, 2*rowsPerStatement)
	scratch := make([]byte, 0, 4096)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, b.insertSQL(len(args)/2), args...)
		args = args[:0]
		if err != nil {
			tx.Rollback() //nolint:errcheck // before creating the table again
			b.recreateIfMissing(ctx, err)
		}
		return err
	}
	for _, evs := range batch {
		for _, ev := range evs {
			scratch = ev.AppendJSON(scratch[:0], b.cfg.Format)
			args = append(args, ev.SenderID, string(scratch))
			if len(args) == 2*rowsPerStatement {
				if err := flush(); err != nil {
					return fmt.Errorf("sql broker: insert into %s: %w", b.cfg.Table, err)
				}
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("sql broker: insert into %s: %w", b.cfg.Table, err)
	}
	return nil
}

func (b *Broker) insertSQL(rows int) string {
	if rows == rowsPerStatement {
		b.fullInsert.Do(func() { b.fullInsertSQL = b.buildInsert(rows) })
		return b.fullInsertSQL
	}
	return b.buildInsert(rows)
}

func (b *Broker) buildInsert(rows int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO ")
	sb.WriteString(b.cfg.Table)
	sb.WriteString(" (sender_id, data) VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		sb.WriteString(b.cfg.DB.Dialect.Placeholder(2*i + 1))
		sb.WriteByte(',')
		sb.WriteString(b.cfg.DB.Dialect.Placeholder(2*i + 2))
		sb.WriteByte(')')
	}
	return sb.String()
}

// Ping checks the database answers.
func (b *Broker) Ping(ctx context.Context) error { return b.db.PingContext(ctx) }

// Close stops accepting events, commits those already queued and closes
// the database.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		if err := b.committer.Close(ctx); err != nil {
			b.closeErr = fmt.Errorf("sql broker: close: %w", err)
			return
		}
		b.closeErr = b.db.Close()
	})
	return b.closeErr
}
