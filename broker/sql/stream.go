package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
)

// The positions table is parley's, beside Rasa's events table (whose
// schema stays Rasa's): one row per stream and events table, holding the
// position the stream has written and the epoch of its current writer.
//
//	stream        the spool's identity and the broker's name
//	events_table  the table the rows went to
//	position      the spool seq after the last event written
//	epoch         bumped by each new writer: older writers are fenced
//
// A write updates its row first, on the condition that position and epoch
// are what the writer expects, then inserts the events, and commits both
// or neither. The update takes the row's lock, so a second writer (or a
// restarted one asking for the position) waits for a commit in flight to
// be decided, whatever became of its connection.
func createPositionsTable(ctx context.Context, db *stdsql.DB, d sqldb.Dialect, table string) error {
	ddl := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (stream VARCHAR(255) NOT NULL, events_table VARCHAR(63) NOT NULL, position BIGINT NOT NULL, epoch BIGINT NOT NULL, PRIMARY KEY (stream, events_table))", table)
	if err := sqldb.CreateIfMissing(ctx, db, d, ddl); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

// ErrFenced is returned by a stream's PublishAt after another handle of
// the same stream (a restarted writer) asked for the position.
var ErrFenced = errors.New("sql broker: stream taken over by a newer writer")

// OpenStream returns the stream id's handle; it does no I/O. Its first
// Position call fences earlier handles.
func (b *Broker) OpenStream(_ context.Context, id string) (broker.Stream, error) {
	if len(id) > 255 {
		return nil, fmt.Errorf("sql broker: stream id of %d bytes is longer than 255", len(id))
	}
	d := b.cfg.DB.Dialect
	t := b.cfg.PositionsTable
	ph := d.Placeholder
	return &stream{
		b:  b,
		id: id,
		ensure: fmt.Sprintf("INSERT INTO %s (stream, events_table, position, epoch) VALUES (%s, %s, 0, 0) ON CONFLICT DO NOTHING",
			t, ph(1), ph(2)),
		bump: fmt.Sprintf("UPDATE %s SET epoch = epoch + 1 WHERE stream = %s AND events_table = %s", t, ph(1), ph(2)),
		get:  fmt.Sprintf("SELECT position, epoch FROM %s WHERE stream = %s AND events_table = %s", t, ph(1), ph(2)),
		set: fmt.Sprintf("UPDATE %s SET position = %s WHERE stream = %s AND events_table = %s AND position = %s AND epoch = %s",
			t, ph(1), ph(2), ph(3), ph(4), ph(5)),
	}, nil
}

type stream struct {
	b                      *Broker
	id                     string
	epoch                  int64 // 0 until Position
	ensure, bump, get, set string
}

// Position fences earlier handles of the stream and returns its position.
// If a write of the stream is still committing (its connection was cut),
// the update waits for the row's lock, so the answer includes it or it
// never commits.
func (s *stream) Position(ctx context.Context) (uint64, error) {
	if s.b.closed.Load() {
		return 0, broker.ErrClosed
	}
	tx, err := s.b.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sql broker: position: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	table := s.b.cfg.Table
	if _, err := tx.ExecContext(ctx, s.ensure, s.id, table); err != nil {
		return 0, fmt.Errorf("sql broker: position of %s: %w", s.id, err)
	}
	if _, err := tx.ExecContext(ctx, s.bump, s.id, table); err != nil {
		return 0, fmt.Errorf("sql broker: position of %s: %w", s.id, err)
	}
	var pos, epoch int64
	if err := tx.QueryRowContext(ctx, s.get, s.id, table).Scan(&pos, &epoch); err != nil {
		return 0, fmt.Errorf("sql broker: position of %s: %w", s.id, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sql broker: position of %s: commit: %w", s.id, err)
	}
	s.epoch = epoch
	return uint64(pos), nil
}

// PublishAt inserts evs and moves the position from prev to next in one
// transaction.
func (s *stream) PublishAt(ctx context.Context, prev, next uint64, evs ...event.Event) error {
	if s.b.closed.Load() {
		return broker.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.epoch == 0 {
		return fmt.Errorf("sql broker: stream %s: PublishAt before Position", s.id)
	}
	if err := s.b.check(evs); err != nil {
		return err
	}
	tx, err := s.b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sql broker: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	res, err := tx.ExecContext(ctx, s.set, int64(next), s.id, s.b.cfg.Table, int64(prev), s.epoch)
	if err != nil {
		return fmt.Errorf("sql broker: update position of %s: %w", s.id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sql broker: update position of %s: %w", s.id, err)
	} else if n != 1 {
		var pos, epoch int64
		if err := tx.QueryRowContext(ctx, s.get, s.id, s.b.cfg.Table).Scan(&pos, &epoch); err != nil {
			return fmt.Errorf("sql broker: position of %s: %w", s.id, err)
		}
		if epoch != s.epoch {
			return ErrFenced
		}
		return fmt.Errorf("sql broker: stream %s is at %d, not %d: %w", s.id, pos, prev, broker.ErrPositionMoved)
	}
	if err := s.b.insert(ctx, tx, evs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sql broker: commit: %w", err)
	}
	return nil
}

func (s *stream) Close(context.Context) error { return nil }
