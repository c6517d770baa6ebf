package sqlsrc

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/internal/sqldb"
)

// Options configure New.
type Options struct {
	// DB is the database holding the events table; the Source does not
	// close it. Open it with sqldb.Open from the SQL broker's options (a
	// handle of its own lets SQLite readers run beside the writer).
	DB *sql.DB
	// Dialect is sqldb.SQLite or sqldb.Postgres.
	Dialect sqldb.Dialect
	// Table is Rasa's events table (default events, the SQL broker's).
	Table string
	// Topic names the table in the API (default rasa_core_events).
	Topic string
	// OffsetsTable keeps committed offsets (default
	// parley_consumer_offsets), created when missing.
	OffsetsTable string
	// PollInterval is how often waiting reads look for rows written by
	// other processes (default 500ms); Notify wakes them at once.
	PollInterval time.Duration
	// GapTimeout bounds how long a read waits, on PostgreSQL, for a
	// missing id below visible ones to be committed before skipping it
	// (default 30s). Gaps left by finished transactions are skipped as
	// soon as PostgreSQL shows no transaction that could fill them is
	// still running, normally within a fraction of a second.
	GapTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultTable        = "events"
	DefaultOffsetsTable = "parley_consumer_offsets"
	DefaultPollInterval = 500 * time.Millisecond
	DefaultGapTimeout   = 30 * time.Second
)

// Source is the SQL source. It implements consumer.Source and
// consumer.Notifier.
type Source struct {
	db    *sql.DB
	opts  Options
	log   *slog.Logger
	q     queries
	coord *coordinator

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) when rows may have been added
	waiters int
	lastMax int64

	stop context.CancelFunc
	wg   sync.WaitGroup
}

var (
	_ consumer.Source      = (*Source)(nil)
	_ consumer.Notifier    = (*Source)(nil)
	_ consumer.GroupOwners = (*Source)(nil)
)

// queries are the statements, built once for the table names and dialect.
type queries struct {
	fetch, bounds, maxID, committed, commit, claim string
}

// New creates the events table (Rasa's DDL) and the offsets table if
// missing, and starts the watcher that wakes waiting reads.
func New(ctx context.Context, opts Options) (*Source, error) {
	if opts.DB == nil {
		return nil, errors.New("sql consumer source: no database")
	}
	if opts.Dialect == "" {
		opts.Dialect = sqldb.SQLite
	}
	opts.Table = cmp.Or(opts.Table, DefaultTable)
	opts.Topic = cmp.Or(opts.Topic, consumer.DefaultTopic)
	opts.OffsetsTable = cmp.Or(opts.OffsetsTable, DefaultOffsetsTable)
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.GapTimeout <= 0 {
		opts.GapTimeout = DefaultGapTimeout
	}
	for _, t := range []string{opts.Table, opts.OffsetsTable} {
		if !sqldb.ValidTable(t) {
			return nil, fmt.Errorf("sql consumer source: %q is not a plain SQL table name", t)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := sqlbroker.CreateTable(ctx, opts.DB, opts.Dialect, opts.Table); err != nil {
		return nil, fmt.Errorf("sql consumer source: %w", err)
	}
	if err := createOffsetsTable(ctx, opts.DB, opts.Dialect, opts.OffsetsTable); err != nil {
		return nil, fmt.Errorf("sql consumer source: %w", err)
	}
	s := &Source{
		db:      opts.DB,
		opts:    opts,
		log:     log,
		q:       buildQueries(opts),
		changed: make(chan struct{}),
		lastMax: -1,
	}
	s.coord = newCoordinator()
	wctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(1)
	go s.watch(wctx)
	return s, nil
}

func buildQueries(o Options) queries {
	p := o.Dialect.Placeholder
	q := queries{
		bounds:    "SELECT MIN(id), MAX(id) FROM " + o.Table,
		maxID:     "SELECT MAX(id) FROM " + o.Table,
		committed: fmt.Sprintf("SELECT committed_offset, metadata FROM %s WHERE group_id = %s AND topic = %s AND partition = %s", o.OffsetsTable, p(1), p(2), p(3)),
		commit: fmt.Sprintf("INSERT INTO %s (group_id, topic, partition, committed_offset, metadata, updated_at) VALUES (%s, %s, %s, %s, %s, %s) "+
			"ON CONFLICT (group_id, topic, partition) DO UPDATE SET committed_offset = excluded.committed_offset, metadata = excluded.metadata, updated_at = excluded.updated_at",
			o.OffsetsTable, p(1), p(2), p(3), p(4), p(5), p(6)),
	}
	// A group's owner is a row beside its offsets: topic "", partition
	// -1, the client in metadata. The first claim wins.
	q.claim = fmt.Sprintf("INSERT INTO %s (group_id, topic, partition, committed_offset, metadata, updated_at) VALUES (%s, '', -1, 0, %s, %s) ON CONFLICT (group_id, topic, partition) DO NOTHING",
		o.OffsetsTable, p(1), p(2), p(3))
	if o.Dialect == sqldb.Postgres {
		// The snapshot's bounds come with the rows (the same snapshot):
		// they tell when a gap in the ids can no longer be filled.
		q.fetch = fmt.Sprintf("SELECT id, sender_id, data, txid_snapshot_xmin(txid_current_snapshot()), txid_snapshot_xmax(txid_current_snapshot()) FROM %s WHERE id >= $1 ORDER BY id LIMIT $2", o.Table)
	} else {
		q.fetch = fmt.Sprintf("SELECT id, sender_id, data, 0, 0 FROM %s WHERE id >= ? ORDER BY id LIMIT ?", o.Table)
	}
	return q
}

func createOffsetsTable(ctx context.Context, db *sql.DB, d sqldb.Dialect, table string) error {
	ddl := "CREATE TABLE IF NOT EXISTS " + table + ` (
	group_id VARCHAR(255) NOT NULL,
	topic VARCHAR(255) NOT NULL,
	partition INTEGER NOT NULL,
	committed_offset BIGINT NOT NULL,
	metadata TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (group_id, topic, partition))`
	if err := sqldb.CreateIfMissing(ctx, db, d, ddl); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

// DefaultTopic returns the table's topic name.
func (s *Source) DefaultTopic() string { return s.opts.Topic }

// Topics returns the table's topic.
func (s *Source) Topics(ctx context.Context) ([]string, error) { return []string{s.opts.Topic}, nil }

// Partitions returns [0] for the table's topic.
func (s *Source) Partitions(ctx context.Context, topic string) ([]int32, error) {
	if topic != s.opts.Topic {
		return nil, fmt.Errorf("%q: %w", topic, consumer.ErrTopicNotFound)
	}
	return []int32{0}, nil
}

// Offsets returns the lowest id and one past the highest; both are 0 for
// an empty table.
func (s *Source) Offsets(ctx context.Context, topic string, partition int32) (consumer.PartitionOffsets, error) {
	if err := s.check(topic, partition); err != nil {
		return consumer.PartitionOffsets{}, err
	}
	return s.bounds(ctx)
}

func (s *Source) check(topic string, partition int32) error {
	if topic != s.opts.Topic {
		return fmt.Errorf("%q: %w", topic, consumer.ErrTopicNotFound)
	}
	if partition != 0 {
		return fmt.Errorf("%s[%d]: %w", topic, partition, consumer.ErrPartitionNotFound)
	}
	return nil
}

func (s *Source) bounds(ctx context.Context) (consumer.PartitionOffsets, error) {
	var lo, hi sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.q.bounds).Scan(&lo, &hi); err != nil {
		return consumer.PartitionOffsets{}, fmt.Errorf("sql consumer source: %w", err)
	}
	if !hi.Valid {
		return consumer.PartitionOffsets{}, nil
	}
	return consumer.PartitionOffsets{Beginning: lo.Int64, End: hi.Int64 + 1}, nil
}

// NewConsumer makes a member.
func (s *Source) NewConsumer(ctx context.Context, opts consumer.ConsumerOptions) (consumer.Consumer, error) {
	return newMember(s, opts), nil
}

// Notify wakes the reads waiting for rows: the server calls it when the
// SQL broker has committed events.
func (s *Source) Notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// changedChan returns the channel closed the next time rows may have been
// added (Notify, or the watcher seeing a new highest id). A read takes it
// before its query, so that a row added in between still wakes it.
func (s *Source) changedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Source) addWaiter(d int) {
	s.mu.Lock()
	s.waiters += d
	s.mu.Unlock()
}

// watch looks for rows written by other processes while reads wait.
func (s *Source) watch(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		idle := s.waiters == 0
		s.mu.Unlock()
		if idle {
			continue
		}
		var hi sql.NullInt64
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.db.QueryRowContext(qctx, s.q.maxID).Scan(&hi)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("sql consumer source: polling for new events", "err", err)
			}
			continue
		}
		s.mu.Lock()
		changed := hi.Int64 != s.lastMax
		s.lastMax = hi.Int64
		s.mu.Unlock()
		if changed {
			s.Notify()
		}
	}
}

// Close stops the watcher. It does not close the database.
func (s *Source) Close(ctx context.Context) error {
	s.stop()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// committed reads a group's committed offset.
func (s *Source) committed(ctx context.Context, group string) (off int64, meta string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, s.q.committed, group, s.opts.Topic, 0).Scan(&off, &meta)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("sql consumer source: read committed offset: %w", err)
	}
	return off, meta, true, nil
}

// ClaimGroup implements consumer.GroupOwners: the group's owner is
// recorded beside its offsets, the first client to claim it.
func (s *Source) ClaimGroup(ctx context.Context, group, client string) (string, error) {
	if _, err := s.db.ExecContext(ctx, s.q.claim, group, client, time.Now().UnixMilli()); err != nil {
		return "", fmt.Errorf("sql consumer source: record the owner of group %q: %w", group, err)
	}
	var owner string
	err := s.db.QueryRowContext(ctx, s.q.committed, group, "", -1).Scan(new(int64), &owner)
	if err != nil {
		return "", fmt.Errorf("sql consumer source: read the owner of group %q: %w", group, err)
	}
	return owner, nil
}

// commit stores a group's committed offset.
func (s *Source) commit(ctx context.Context, group string, off int64, meta string) error {
	_, err := s.db.ExecContext(ctx, s.q.commit, group, s.opts.Topic, 0, off, meta, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("sql consumer source: commit offset: %w", err)
	}
	return nil
}
