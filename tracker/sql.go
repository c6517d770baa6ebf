package tracker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
)

// SQLStore keeps conversations in Rasa's SQLTrackerStore table, so that
// parley and Rasa can read each other's databases:
//
//	events(id INTEGER PK, sender_id VARCHAR(255) NOT NULL,
//	       type_name VARCHAR(255) NOT NULL, timestamp FLOAT,
//	       intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)
//	CREATE INDEX ix_events_sender_id ON events (sender_id)
//
// data is the event in Rasa's bytes without sender_id (json.dumps of
// as_dict()); the other columns are filled as Rasa's save() fills them.
// A conversation's events are read ordered by id, as Rasa 3.6.21 does.
type SQLStore struct {
	db      *sql.DB
	dialect sqldb.Dialect
	table   string
	log     *slog.Logger
	locks   keyedMutex

	q struct{ retrieve, keys, insertRow, deleteConv string }

	mu     sync.RWMutex // held for reading by operations, for writing by Close
	closed bool
}

var _ Store = (*SQLStore)(nil)

// rowsPerInsert bounds one INSERT's VALUES list (6 parameters a row).
const rowsPerInsert = 100

// insertCols is the number of columns an INSERT fills.
const insertCols = 6

// maxIDLen is Rasa's VARCHAR(255) for sender_id, which PostgreSQL enforces.
const maxIDLen = 255

// OpenSQL opens the store described by c (whose Type must be sql),
// creating the database (PostgreSQL with login_db), the table and its
// index when missing.
func OpenSQL(ctx context.Context, c Config, log *slog.Logger) (*SQLStore, error) {
	if log == nil {
		log = slog.Default()
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.SQL.Dialect == sqldb.Postgres && c.LoginDB != "" {
		if err := createDatabase(ctx, c); err != nil {
			return nil, fmt.Errorf("sql tracker store: %w", err)
		}
	}
	db, err := sqldb.Open(ctx, c.SQL)
	if err != nil {
		return nil, fmt.Errorf("sql tracker store: %w", err)
	}
	if c.SQL.Dialect == sqldb.Postgres {
		// An update holds a connection while it publishes; allow as many
		// conversations to be written at once.
		pool := c.PoolSize
		if pool <= 0 {
			pool = DefaultPoolSize
		}
		db.SetMaxOpenConns(pool)
		db.SetMaxIdleConns(pool)
	}
	s := &SQLStore{db: db, dialect: c.SQL.Dialect, table: c.Table, log: log}
	s.prepareQueries()
	if err := s.createTable(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sql tracker store: %w", err)
	}
	log.Info("sql tracker store ready", "db", c.SQL.Describe(), "table", c.Table)
	return s, nil
}

func (s *SQLStore) prepareQueries() {
	p := s.dialect.Placeholder
	s.q.retrieve = "SELECT id, data FROM " + s.table + " WHERE sender_id = " + p(1) + " ORDER BY id"
	s.q.keys = "SELECT DISTINCT sender_id FROM " + s.table
	s.q.deleteConv = "DELETE FROM " + s.table + " WHERE sender_id = " + p(1)
}

// createTable creates Rasa's table and index if missing, with the DDL
// SQLAlchemy emits for Rasa's model, then checks the table has Rasa's
// columns: the SQL event broker's table is also called events, and
// pointing both at one database would otherwise fail on the first write.
func (s *SQLStore) createTable(ctx context.Context) error {
	idType := "INTEGER"
	if s.dialect == sqldb.Postgres {
		idType = "SERIAL"
	}
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS " + s.table + " (id " + idType + " NOT NULL, sender_id VARCHAR(255) NOT NULL, " +
			"type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), " +
			"data TEXT, PRIMARY KEY (id))",
		"CREATE INDEX IF NOT EXISTS ix_" + s.table + "_sender_id ON " + s.table + " (sender_id)",
	}
	stmts = append(stmts, s.recordDDL()...)
	for _, stmt := range stmts {
		if err := sqldb.CreateIfMissing(ctx, s.db, s.dialect, stmt); err != nil {
			return fmt.Errorf("create table %s: %w", s.table, err)
		}
	}
	probe := "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM " + s.table + " WHERE 1 = 0"
	rows, err := s.db.QueryContext(ctx, probe)
	if err != nil {
		return fmt.Errorf("%w: table %s exists without the columns of Rasa's tracker store (%v); "+
			"if the sql event broker writes a table of that name in the same database, "+
			"give the tracker store another one with the tracker_store key table", ErrSchema, s.table, err)
	}
	return rows.Close()
}

// ErrSchema is returned by OpenSQL when the table exists but is not a
// tracker store table.
var ErrSchema = errors.New("tracker store table has the wrong columns")

// DB returns the database handle, for tests and tools.
func (s *SQLStore) DB() *sql.DB { return s.db }

// Table returns the table the store uses.
func (s *SQLStore) Table() string { return s.table }

func (s *SQLStore) begin() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *SQLStore) end() { s.mu.RUnlock() }

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Retrieve reads the conversation's rows ordered by id.
func (s *SQLStore) Retrieve(ctx context.Context, id string) ([]event.Event, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	return s.retrieve(ctx, s.db, id)
}

func (s *SQLStore) retrieve(ctx context.Context, q querier, id string) ([]event.Event, error) {
	rows, err := q.QueryContext(ctx, s.q.retrieve, id)
	if err != nil {
		return nil, fmt.Errorf("sql tracker store: read %q: %w", id, err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var (
			rowID int64
			data  sql.NullString
		)
		if err := rows.Scan(&rowID, &data); err != nil {
			return nil, fmt.Errorf("sql tracker store: read %q: %w", id, err)
		}
		ev, err := decodeRow(id, rowID, data)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sql tracker store: read %q: %w", id, err)
	}
	return out, nil
}

// ErrCorrupt is returned for a row whose data is not an event object.
var ErrCorrupt = errors.New("tracker store row is not a JSON event")

func decodeRow(sender string, rowID int64, data sql.NullString) (event.Event, error) {
	v, err := event.ParseValue([]byte(data.String))
	if err == nil {
		var ev event.Event
		if ev, err = event.New(sender, v); err == nil {
			return ev, nil
		}
	}
	return event.Event{}, fmt.Errorf("sql tracker store: %w: row id %d of conversation %q: %v", ErrCorrupt, rowID, sender, err)
}

// Update serializes updates of a conversation in this process with a lock,
// and across processes on PostgreSQL with a transaction-scoped advisory
// lock held from the read to the commit. On SQLite the read and fn run
// outside the write transaction, since SQLite's single connection would
// otherwise stall every other conversation while fn publishes; several
// processes writing one conversation of one SQLite file at once are not
// serialized (as with Rasa and its in-memory lock store).
func (s *SQLStore) Update(ctx context.Context, id string, fn UpdateFunc) error {
	return s.UpdateKeyed(ctx, id, "", unkeyed(fn))
}

// UpdateKeyed is Update with the outcome recorded for key, read in the
// update's transaction on PostgreSQL (and under its lock on SQLite).
func (s *SQLStore) UpdateKeyed(ctx context.Context, id, key string, fn KeyedUpdateFunc) error {
	if err := s.checkID(id); err != nil {
		return err
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()

	if s.dialect == sqldb.Postgres {
		return s.updateLocked(ctx, id, key, fn)
	}
	// SQLite: the transaction starts after fn, which publishes (and may
	// wait on the spool), so as not to hold the one connection meanwhile;
	// the in-process lock above orders the conversation's updates.
	current, err := s.retrieve(ctx, s.db, id)
	if err != nil {
		return err
	}
	rec, err := s.recorded(ctx, s.db, id, key)
	if err != nil {
		return err
	}
	ch, err := fn(current, rec)
	if err != nil {
		return err
	}
	if ch.empty() {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sql tracker store: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	return s.commit(ctx, tx, id, ch)
}

// commit writes ch in tx and commits it.
func (s *SQLStore) commit(ctx context.Context, tx *sql.Tx, id string, ch Change) error {
	if err := s.write(ctx, tx, id, ch); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sql tracker store: commit: %w", err)
	}
	return nil
}

// updateLocked is Update on PostgreSQL: the transaction holds an advisory
// lock on the conversation from the read to the commit, so that parley
// processes sharing the database do not interleave their updates.
func (s *SQLStore) updateLocked(ctx context.Context, id, key string, fn KeyedUpdateFunc) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sql tracker store: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey(id)); err != nil {
		return fmt.Errorf("sql tracker store: lock %q: %w", id, err)
	}
	current, err := s.retrieve(ctx, tx, id)
	if err != nil {
		return err
	}
	rec, err := s.recorded(ctx, tx, id, key)
	if err != nil {
		return err
	}
	ch, err := fn(current, rec)
	if err != nil {
		return err
	}
	if ch.empty() {
		return nil
	}
	return s.commit(ctx, tx, id, ch)
}

// lockKey maps a conversation of this table to an advisory lock number.
func (s *SQLStore) lockKey(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("parley-tracker\x00" + s.table + "\x00" + id))
	return int64(h.Sum64())
}

func (s *SQLStore) checkID(id string) error {
	if id == "" {
		return fmt.Errorf("sql tracker store: %w: empty", ErrInvalidID)
	}
	if s.dialect == sqldb.Postgres {
		if n := utf8.RuneCountInString(id); n > maxIDLen {
			return fmt.Errorf("sql tracker store: %w: %d characters do not fit Rasa's VARCHAR(255) sender_id column", ErrInvalidID, n)
		}
	}
	return nil
}

func (s *SQLStore) write(ctx context.Context, tx *sql.Tx, id string, ch Change) error {
	if ch.Record != nil {
		if err := s.writeRecord(ctx, tx, id, ch.Record); err != nil {
			return err
		}
	}
	if ch.Replace {
		if _, err := tx.ExecContext(ctx, s.q.deleteConv, id); err != nil {
			return fmt.Errorf("sql tracker store: delete %q: %w", id, err)
		}
	}
	args := make([]any, 0, insertCols*rowsPerInsert)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, s.insertSQL(len(args)/insertCols), args...)
		args = args[:0]
		if err != nil {
			return fmt.Errorf("sql tracker store: insert into %s: %w", s.table, err)
		}
		return nil
	}
	for _, ev := range ch.Events {
		r := rowOf(ev)
		args = append(args, id, s.limit(r.typeName), r.timestamp, s.limitNull(r.intentName), s.limitNull(r.actionName), r.data)
		if len(args) == insertCols*rowsPerInsert {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (s *SQLStore) insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.table + " (sender_id, type_name, timestamp, intent_name, action_name, data) VALUES ")
	n := 1
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := 0; j < insertCols; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s.dialect.Placeholder(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// limit cuts a value of a derived VARCHAR(255) column to 255 characters on
// PostgreSQL, which would refuse the row (Rasa's save would fail). data
// keeps the whole event; the columns only serve queries.
func (s *SQLStore) limit(v string) string {
	if s.dialect != sqldb.Postgres || utf8.RuneCountInString(v) <= maxIDLen {
		return v
	}
	r := []rune(v)
	return string(r[:maxIDLen])
}

func (s *SQLStore) limitNull(v sql.NullString) sql.NullString {
	if v.Valid {
		v.String = s.limit(v.String)
	}
	return v
}

// row is the column values Rasa's SQLTrackerStore.save writes for an
// event.
type row struct {
	typeName   string
	timestamp  sql.NullFloat64
	intentName sql.NullString
	actionName sql.NullString
	data       string
}

// rowOf fills the columns as Rasa does: type_name from the event type,
// timestamp from "timestamp", intent_name from parse_data.intent.name and
// action_name from "name" (for every type that has one: slot, followup,
// active_loop, reminder... not only actions).
func rowOf(ev event.Event) row {
	r := row{typeName: ev.Type(), data: string(ev.Body().AppendJSON(nil, event.FormatRasa))}
	if ts, ok := ev.Timestamp(); ok {
		r.timestamp = sql.NullFloat64{Float64: ts, Valid: true}
	}
	pd, _ := ev.Get("parse_data")
	intent, _ := pd.Get("intent")
	if n, ok := intent.Get("name"); ok && n.Kind() == event.String {
		r.intentName = sql.NullString{String: n.Str(), Valid: true}
	}
	if n, ok := ev.Get("name"); ok && n.Kind() == event.String {
		r.actionName = sql.NullString{String: n.Str(), Valid: true}
	}
	return r
}

// Keys returns the distinct sender ids, sorted bytewise (not by the
// database's collation, so every dialect agrees).
func (s *SQLStore) Keys(ctx context.Context) ([]string, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	rows, err := s.db.QueryContext(ctx, s.q.keys)
	if err != nil {
		return nil, fmt.Errorf("sql tracker store: keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("sql tracker store: keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sql tracker store: keys: %w", err)
	}
	slices.Sort(keys)
	return keys, nil
}

// maxSenderParams is the most sender ids put in an IN list; longer lists
// are filtered in Go instead.
const maxSenderParams = 500

// where builds the WHERE clause for q. filter is set when the sender ids
// must be checked in Go.
func (s *SQLStore) where(q Query) (clause string, args []any, filter map[string]bool) {
	var conds []string
	p := func(v any) string {
		args = append(args, v)
		return s.dialect.Placeholder(len(args))
	}
	if q.MinTimestamp != nil {
		conds = append(conds, "timestamp >= "+p(*q.MinTimestamp))
	}
	if q.MaxTimestamp != nil {
		conds = append(conds, "timestamp < "+p(*q.MaxTimestamp))
	}
	if q.SenderIDs != nil {
		switch {
		case len(q.SenderIDs) == 0:
			conds = append(conds, "1 = 0")
		case len(q.SenderIDs) <= maxSenderParams:
			ph := make([]string, len(q.SenderIDs))
			for i, id := range q.SenderIDs {
				ph[i] = p(id)
			}
			conds = append(conds, "sender_id IN ("+strings.Join(ph, ",")+")")
		default:
			filter = q.senderSet()
		}
	}
	if len(conds) == 0 {
		return "", args, filter
	}
	return " WHERE " + strings.Join(conds, " AND "), args, filter
}

// Count counts the matching rows.
func (s *SQLStore) Count(ctx context.Context, q Query) (int64, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	clause, args, filter := s.where(q)
	if filter != nil {
		var n int64
		err := s.scan(ctx, clause, args, filter, func(event.Event) error { n++; return nil })
		return n, err
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+s.table+clause, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sql tracker store: count: %w", err)
	}
	return n, nil
}

// Scan streams the matching rows ordered by timestamp (rows without one
// first, in every dialect), then id, in one
// query: the database sorts once, and no conversation is loaded whole
// (`rasa export` loaded every tracker first, RasaHQ/rasa#8277). Rasa's
// table has no timestamp index, so the database sorts the selection.
func (s *SQLStore) Scan(ctx context.Context, q Query, fn func(event.Event) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	clause, args, filter := s.where(q)
	return s.scan(ctx, clause, args, filter, fn)
}

func (s *SQLStore) scan(ctx context.Context, clause string, args []any, filter map[string]bool, fn func(event.Event) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT id, sender_id, data FROM "+s.table+clause+" ORDER BY timestamp NULLS FIRST, id", args...)
	if err != nil {
		return fmt.Errorf("sql tracker store: scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rowID  int64
			sender string
			data   sql.NullString
		)
		if err := rows.Scan(&rowID, &sender, &data); err != nil {
			return fmt.Errorf("sql tracker store: scan: %w", err)
		}
		if filter != nil && !filter[sender] {
			continue
		}
		ev, err := decodeRow(sender, rowID, data)
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sql tracker store: scan: %w", err)
	}
	return nil
}

// Close waits for operations in flight and closes the database.
func (s *SQLStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// Ping checks the database answers, for readiness checks.
func (s *SQLStore) Ping(ctx context.Context) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return s.db.PingContext(ctx)
}
