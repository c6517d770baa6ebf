package tracker

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/internal/sqldb"
)

// The SQL store keeps Idempotency-Key outcomes in a table of its own beside
// Rasa's, <table>_parley_idempotency, so that Rasa's schema stays as Rasa
// made it and every parley node sharing the database sees the records. A
// record is written in the transaction that writes its events.

func (s *SQLStore) recordTable() string { return s.table + "_parley_idempotency" }

// recordDDL creates the record table and its index on created (for
// pruning).
func (s *SQLStore) recordDDL() []string {
	blob := "BLOB"
	if s.dialect == sqldb.Postgres {
		blob = "BYTEA"
	}
	t := s.recordTable()
	return []string{
		"CREATE TABLE IF NOT EXISTS " + t + " (sender_id VARCHAR(255) NOT NULL, idem_key VARCHAR(255) NOT NULL, " +
			"created BIGINT NOT NULL, outcome " + blob + " NOT NULL, PRIMARY KEY (sender_id, idem_key))",
		"CREATE INDEX IF NOT EXISTS ix_" + t + "_created ON " + t + " (created)",
	}
}

// Recorded reads the outcome recorded for key on conversation id.
func (s *SQLStore) Recorded(ctx context.Context, id, key string) (idempotency.Outcome, bool, error) {
	if err := s.begin(); err != nil {
		return idempotency.Outcome{}, false, err
	}
	defer s.end()
	o, err := s.recorded(ctx, s.db, id, key)
	if err != nil || o == nil {
		return idempotency.Outcome{}, false, err
	}
	return *o, true, nil
}

// recorded reads a record through q (the update's transaction, which on
// PostgreSQL already holds a pooled connection: asking the pool for
// another could wait for ever when every connection is held so).
func (s *SQLStore) recorded(ctx context.Context, q querier, id, key string) (*idempotency.Outcome, error) {
	if key == "" {
		return nil, nil
	}
	p := s.dialect.Placeholder
	rows, err := q.QueryContext(ctx, "SELECT outcome FROM "+s.recordTable()+" WHERE sender_id = "+p(1)+" AND idem_key = "+p(2), id, key)
	if err != nil {
		return nil, fmt.Errorf("sql tracker store: read idempotency record: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sql tracker store: read idempotency record: %w", err)
		}
		return nil, nil
	}
	var data []byte
	if err := rows.Scan(&data); err != nil {
		return nil, fmt.Errorf("sql tracker store: read idempotency record: %w", err)
	}
	var o idempotency.Outcome
	if err := o.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("sql tracker store: idempotency record of %q: %w", id, err)
	}
	if o.Expired(time.Now(), RecordWindow) {
		return nil, nil
	}
	return &o, nil
}

// writeRecord stores r in tx, replacing an expired record of the same key,
// and drops records older than RecordWindow.
func (s *SQLStore) writeRecord(ctx context.Context, tx *sql.Tx, id string, r *Record) error {
	data, err := r.Outcome.MarshalBinary()
	if err != nil {
		return err
	}
	p, t := s.dialect.Placeholder, s.recordTable()
	stmts := []struct {
		q    string
		args []any
	}{
		{"DELETE FROM " + t + " WHERE created < " + p(1), []any{time.Now().Add(-RecordWindow).UnixNano()}},
		{"DELETE FROM " + t + " WHERE sender_id = " + p(1) + " AND idem_key = " + p(2), []any{id, r.Key}},
		{"INSERT INTO " + t + " (sender_id, idem_key, created, outcome) VALUES (" + p(1) + "," + p(2) + "," + p(3) + "," + p(4) + ")",
			[]any{id, r.Key, r.Outcome.Created.UnixNano(), data}},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("sql tracker store: record idempotency key: %w", err)
		}
	}
	return nil
}
