package privacy

import (
	"container/list"
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/sqldb"
)

// A Store keeps the PII values learned for each conversation where every
// parley node and the next start can read them. Load returns the values
// seen since the given time; Save records values as seen now.
type Store interface {
	Load(ctx context.Context, sender string, since time.Time) ([]Learned, error)
	Save(ctx context.Context, sender string, vs []Learned, now time.Time) error
	Close() error
}

// values is the in-memory view of the learned values: a cache of the
// Store, bounded in conversations (least recently used go first), values
// per conversation (oldest go first) and time (ValueTTL).
type values struct {
	store   Store // nil: memory only
	ttl     time.Duration
	refresh time.Duration
	maxVals int
	maxConv int
	now     func() time.Time

	// n counts the conversations cached, read without the lock: while it
	// is 0 and there is no store, there is nothing to look up.
	n   atomic.Int64
	mu  sync.Mutex
	m   map[string]*list.Element
	lru list.List // of *convValues, most recent first
}

type convValues struct {
	sender string
	loaded time.Time // when read from the store
	vals   []seenValue
}

type seenValue struct {
	Learned
	seen time.Time
}

// defaultRefresh is how long a conversation's cached values are trusted
// before the store is read again, for values other nodes learned.
const defaultRefresh = 5 * time.Second

func newValues(c *Config, store Store) *values {
	return &values{store: store, ttl: c.ValueTTL, refresh: defaultRefresh, maxVals: c.MaxValues, maxConv: c.MaxConversations, now: time.Now, m: map[string]*list.Element{}}
}

// get returns the live values known for sender.
func (v *values) get(ctx context.Context, sender string) ([]Learned, error) {
	if v.store == nil && v.n.Load() == 0 {
		return nil, nil
	}
	v.mu.Lock()
	e, ok := v.m[sender]
	if !ok && v.store == nil {
		v.mu.Unlock()
		return nil, nil // the common case: nothing learned for sender
	}
	now := v.now()
	stale := !ok || v.store != nil && now.Sub(e.Value.(*convValues).loaded) > v.refresh
	v.mu.Unlock()
	if stale && v.store != nil {
		loaded, err := v.store.Load(ctx, sender, now.Add(-v.ttl))
		if err != nil {
			return nil, fmt.Errorf("privacy: load learned values: %w", err)
		}
		v.merge(sender, loaded, now, true)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok = v.m[sender]
	if !ok {
		return nil, nil
	}
	v.lru.MoveToFront(e)
	cv := e.Value.(*convValues)
	out := make([]Learned, 0, len(cv.vals))
	for _, s := range cv.vals {
		if now.Sub(s.seen) <= v.ttl {
			out = append(out, s.Learned)
		}
	}
	return out, nil
}

// add records vs for sender and saves the ones not known yet.
func (v *values) add(ctx context.Context, sender string, vs []Learned) error {
	if len(vs) == 0 {
		return nil
	}
	now := v.now()
	fresh := v.merge(sender, vs, now, false)
	if len(fresh) > 0 && v.store != nil {
		if err := v.store.Save(ctx, sender, fresh, now); err != nil {
			return fmt.Errorf("privacy: save learned values: %w", err)
		}
	}
	return nil
}

// merge adds vs to sender's values and returns those that were new.
func (v *values) merge(sender string, vs []Learned, now time.Time, fromStore bool) []Learned {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[sender]
	if !ok {
		e = v.lru.PushFront(&convValues{sender: sender})
		v.m[sender] = e
		for v.lru.Len() > v.maxConv {
			old := v.lru.Back()
			delete(v.m, old.Value.(*convValues).sender)
			v.lru.Remove(old)
		}
		v.n.Store(int64(len(v.m)))
	}
	cv := e.Value.(*convValues)
	if fromStore {
		cv.loaded = now
	}
	var fresh []Learned
next:
	for _, l := range vs {
		for i := range cv.vals {
			if cv.vals[i].Learned == l {
				if !fromStore {
					cv.vals[i].seen = now
				}
				continue next
			}
		}
		cv.vals = append(cv.vals, seenValue{l, now})
		fresh = append(fresh, l)
	}
	if n := len(cv.vals) - v.maxVals; n > 0 {
		cv.vals = append(cv.vals[:0], cv.vals[n:]...)
	}
	return fresh
}

// SQLStore keeps learned values in a table of the tracker store's
// database, beside the pristine events they come from.
type SQLStore struct {
	opts    sqldb.Options
	dialect sqldb.Dialect
	table   string
	ttl     time.Duration
	max     int

	mu        sync.Mutex
	db        *sql.DB // nil until the first use connects
	lastPurge time.Time
}

// DefaultValuesTable is the table of SQLStore.
const DefaultValuesTable = "parley_privacy_values"

// OpenSQLStore returns a store for the learned-values table in the
// database o names. It connects, and creates the table, on first use (the
// tracker store may create the database after parley's brokers start), and
// again after a failure. Rows older than ttl are deleted as it goes.
func OpenSQLStore(ctx context.Context, o sqldb.Options, ttl time.Duration, maxPerSender int) (*SQLStore, error) {
	return openSQLStore(ctx, o, DefaultValuesTable, ttl, maxPerSender)
}

func openSQLStore(_ context.Context, o sqldb.Options, table string, ttl time.Duration, maxPerSender int) (*SQLStore, error) {
	if !sqldb.ValidTable(table) {
		return nil, fmt.Errorf("privacy: %q is not a plain SQL table name", table)
	}
	return &SQLStore{opts: o, dialect: o.Dialect, table: table, ttl: ttl, max: maxPerSender}, nil
}

// conn returns the database, connecting first if needed.
func (s *SQLStore) conn(ctx context.Context) (*sql.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		return s.db, nil
	}
	db, err := sqldb.Open(ctx, s.opts)
	if err != nil {
		return nil, err
	}
	ddl := []string{
		"CREATE TABLE IF NOT EXISTS " + s.table + " (sender_id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, value TEXT NOT NULL, seen_at BIGINT NOT NULL, PRIMARY KEY (sender_id, name, value))",
		"CREATE INDEX IF NOT EXISTS ix_" + s.table + "_seen_at ON " + s.table + " (seen_at)",
	}
	for _, q := range ddl {
		if err := sqldb.CreateIfMissing(ctx, db, s.dialect, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("create %s: %w", s.table, err)
		}
	}
	s.db = db
	return db, nil
}

func (s *SQLStore) ph(n int) string { return s.dialect.Placeholder(n) }

// Load returns sender's values seen since since, newest first, at most
// the per-conversation maximum.
func (s *SQLStore) Load(ctx context.Context, sender string, since time.Time) ([]Learned, error) {
	db, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT name, value FROM "+s.table+" WHERE sender_id = "+s.ph(1)+" AND seen_at >= "+s.ph(2)+
		" ORDER BY seen_at DESC LIMIT "+strconv.Itoa(s.max), sender, since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Learned
	for rows.Next() {
		var l Learned
		if err := rows.Scan(&l.Name, &l.Value); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Save upserts vs as seen at now, and now and then deletes expired rows.
func (s *SQLStore) Save(ctx context.Context, sender string, vs []Learned, now time.Time) error {
	db, err := s.conn(ctx)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := "INSERT INTO " + s.table + " (sender_id, name, value, seen_at) VALUES (" + s.ph(1) + ", " + s.ph(2) + ", " + s.ph(3) + ", " + s.ph(4) +
		") ON CONFLICT (sender_id, name, value) DO UPDATE SET seen_at = excluded.seen_at"
	for _, l := range vs {
		if _, err := tx.ExecContext(ctx, q, sender, l.Name, l.Value, now.UnixMilli()); err != nil {
			return err
		}
	}
	// At most max values per conversation: the oldest go.
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE sender_id = "+s.ph(1)+" AND seen_at < (SELECT seen_at FROM "+s.table+
		" WHERE sender_id = "+s.ph(2)+" ORDER BY seen_at DESC LIMIT 1 OFFSET "+strconv.Itoa(s.max-1)+")", sender, sender); err != nil {
		return err
	}
	s.mu.Lock()
	purge := now.Sub(s.lastPurge) > time.Minute
	if purge {
		s.lastPurge = now
	}
	s.mu.Unlock()
	if purge {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE seen_at < "+s.ph(1), now.Add(-s.ttl).UnixMilli()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Close closes the database.
func (s *SQLStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}
