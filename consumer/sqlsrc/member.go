package sqlsrc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/internal/sqldb"
)

// settleDelay is how long after a gap is first seen the snapshot is taken
// whose running transactions must all end before the gap is skipped: long
// enough that a transaction that drew an id from the sequence has also
// been given its transaction id.
const settleDelay = 100 * time.Millisecond

// gapRecheck is how often a read stuck at a gap queries again.
const gapRecheck = 50 * time.Millisecond

type memberMode int

const (
	modeNone memberMode = iota
	modeSubscribed
	modeAssigned
)

// member is one consumer instance's reader of the events table.
type member struct {
	s    *Source
	opts consumer.ConsumerOptions

	mu       sync.Mutex
	mode     memberMode
	owned    bool          // partition 0 is this member's to read
	assignCh chan struct{} // closed when owned changes
	pos      int64         // next id to read, when posValid
	posValid bool          // else start from the committed offset or the reset policy
	check    bool          // pos came from outside (a seek, a commit): check it is in range before reading
	epoch    uint64        // bumped when the position is moved from outside a read
	gap      gapState
}

// gapState tracks a hole in the ids (PostgreSQL only; see settle).
type gapState struct {
	at        int64     // the position the hole starts at
	seen      time.Time // when it was first seen; zero when there is none
	probeXmax int64     // xmax of the first snapshot taken settleDelay after seen
	probeMax  int64     // the highest id visible in that snapshot
	settled   int64     // ids at or below are final: holes there stay holes
}

var _ consumer.Consumer = (*member)(nil)

func newMember(s *Source, opts consumer.ConsumerOptions) *member {
	return &member{s: s, opts: opts, assignCh: make(chan struct{}), gap: gapState{settled: -1}}
}

func (m *member) tp() consumer.TopicPartition {
	return consumer.TopicPartition{Topic: m.s.opts.Topic, Partition: 0}
}

// setOwned is called by the coordinator.
func (m *member) setOwned(owned bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owned == owned {
		return
	}
	m.owned = owned
	m.posValid = false // a new owner starts from the committed offset
	m.epoch++
	close(m.assignCh)
	m.assignCh = make(chan struct{})
}

func (m *member) revoke(ctx context.Context) {
	if m.opts.OnRevoked != nil {
		m.opts.OnRevoked(ctx, []consumer.TopicPartition{m.tp()})
	}
}

// Subscribe joins the group for the table's topic.
func (m *member) Subscribe(ctx context.Context, topics []string) error {
	for _, t := range topics {
		if t != m.s.opts.Topic {
			return fmt.Errorf("%q: %w", t, consumer.ErrTopicNotFound)
		}
	}
	m.mu.Lock()
	subscribed := m.mode == modeSubscribed
	m.mode = modeSubscribed
	m.mu.Unlock()
	if !subscribed {
		m.s.coord.join(m)
	}
	return nil
}

// Unsubscribe leaves the group.
func (m *member) Unsubscribe(ctx context.Context) error {
	m.mu.Lock()
	subscribed := m.mode == modeSubscribed
	m.mode = modeNone
	m.mu.Unlock()
	if subscribed {
		m.s.coord.leave(ctx, m)
	}
	return nil
}

// Assign reads partition 0 outside the group's coordination.
func (m *member) Assign(ctx context.Context, tps []consumer.TopicPartition) error {
	for _, tp := range tps {
		if err := m.s.check(tp.Topic, tp.Partition); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mode == modeSubscribed {
		return fmt.Errorf("assign while subscribed: %w", consumer.ErrNotAssigned)
	}
	owned := len(tps) > 0
	m.mode = modeNone
	if owned {
		m.mode = modeAssigned
	}
	if m.owned != owned {
		m.owned = owned
		close(m.assignCh)
		m.assignCh = make(chan struct{})
	}
	m.posValid = false
	m.epoch++
	return nil
}

// Assignment returns [topic/0] when the member reads the partition.
func (m *member) Assignment(ctx context.Context) ([]consumer.TopicPartition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owned {
		return []consumer.TopicPartition{m.tp()}, nil
	}
	return []consumer.TopicPartition{}, nil
}

// position returns the next id to read, initializing it from the
// committed offset or the reset policy. A position that came from outside
// (a committed offset, a seek) is checked against the table's bounds
// first: out of range, it is reset per auto.offset.reset, as Kafka resets
// a fetch that gets OffsetOutOfRange, and the reset is reported; under
// none the read fails until the client seeks.
func (m *member) position(ctx context.Context) (int64, uint64, error) {
	m.mu.Lock()
	pos, valid, check, epoch := m.pos, m.posValid, m.check, m.epoch
	m.mu.Unlock()
	if valid && !check {
		return pos, epoch, nil
	}
	var b consumer.PartitionOffsets
	haveBounds := false
	if !valid {
		off, _, ok, err := m.s.committed(ctx, m.opts.Group)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			pos, check = off, true
		} else {
			if b, err = m.s.bounds(ctx); err != nil {
				return 0, 0, err
			}
			haveBounds = true
			to, ok := m.opts.Reset.Apply(b)
			if !ok {
				return 0, 0, consumer.OutOfRangeError(m.s.opts.Topic, 0, -1, b)
			}
			pos = to
		}
	}
	var reset *consumer.ResetEvent
	if check {
		if !haveBounds {
			var err error
			if b, err = m.s.bounds(ctx); err != nil {
				return 0, 0, err
			}
		}
		if !b.InRange(pos) {
			to, ok := m.opts.Reset.Apply(b)
			if !ok {
				return 0, 0, consumer.OutOfRangeError(m.s.opts.Topic, 0, pos, b)
			}
			reset = &consumer.ResetEvent{Topic: m.s.opts.Topic, From: pos, To: to, Policy: m.opts.Reset, Range: b}
			pos = to
		}
	}
	m.mu.Lock()
	if m.epoch != epoch {
		m.mu.Unlock()
		return 0, 0, errMoved
	}
	m.pos, m.posValid, m.check = pos, true, false
	m.mu.Unlock()
	if reset != nil && m.opts.OnReset != nil {
		m.opts.OnReset(*reset)
	}
	return pos, epoch, nil
}

// errMoved: the position moved while a read used it; the read starts
// over.
var errMoved = errors.New("position moved")

// Fetch reads rows from the position on, waiting for some.
func (m *member) Fetch(ctx context.Context, max int) ([]consumer.Record, error) {
	for {
		m.mu.Lock()
		owned, assignCh := m.owned, m.assignCh
		m.mu.Unlock()
		if !owned {
			// In the group but without the partition: wait for a
			// rebalance, or the end of the request.
			if ctx.Err() != nil {
				return nil, nil
			}
			select {
			case <-assignCh:
				continue
			case <-ctx.Done():
				return nil, nil
			}
		}
		changed := m.s.changedChan() // before the query: nothing added after it is missed
		recs, stuck, err := m.read(ctx, max)
		switch {
		case err == errMoved:
			continue
		case err != nil:
			if ctx.Err() != nil && !errors.Is(err, consumer.ErrOffsetOutOfRange) {
				return nil, nil
			}
			return nil, err
		case len(recs) > 0:
			return recs, nil
		case ctx.Err() != nil:
			return nil, nil
		}
		var recheck *time.Timer
		var recheckC <-chan time.Time
		if stuck {
			recheck = time.NewTimer(gapRecheck)
			recheckC = recheck.C
		}
		m.s.addWaiter(1)
		select {
		case <-changed:
		case <-assignCh:
		case <-recheckC:
		case <-ctx.Done():
		}
		m.s.addWaiter(-1)
		if recheck != nil {
			recheck.Stop()
		}
	}
}

// row is one row of the events table.
type row struct {
	id     int64
	sender sql.NullString
	data   []byte
}

// read runs one query and advances the position past the rows returned.
// stuck reports a gap that holds back rows after it.
func (m *member) read(ctx context.Context, max int) (recs []consumer.Record, stuck bool, err error) {
	qctx := ctx
	if ctx.Err() != nil {
		// A read that must not wait still gets its queries.
		qctx = context.WithoutCancel(ctx)
	}
	pos, epoch, err := m.position(qctx)
	if err != nil {
		return nil, false, err
	}
	rows, err := m.s.db.QueryContext(qctx, m.s.q.fetch, pos, max)
	if err != nil {
		return nil, false, fmt.Errorf("sql consumer source: read %s: %w", m.s.opts.Table, err)
	}
	var (
		batch      []row
		xmin, xmax int64
	)
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.sender, &r.data, &xmin, &xmax); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("sql consumer source: read %s: %w", m.s.opts.Table, err)
		}
		batch = append(batch, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("sql consumer source: read %s: %w", m.s.opts.Table, err)
	}
	if len(batch) == 0 {
		return nil, false, nil
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epoch != epoch {
		return nil, false, errMoved
	}
	n := m.accept(pos, batch, xmin, xmax)
	if n == 0 {
		return nil, true, nil
	}
	recs = make([]consumer.Record, n)
	for i, r := range batch[:n] {
		recs[i] = m.record(r)
	}
	m.pos = batch[n-1].id + 1
	return recs, n < len(batch), nil
}

// accept returns how many rows of batch (ids ascending, from pos) can be
// delivered. On SQLite every row can: ids are given under the database's
// write lock, so a row is visible only after every lower id that will
// ever exist. On PostgreSQL a transaction may commit after another that
// drew a higher id; a hole below a visible row may be a row still being
// written, so delivery stops at it until it settles. m.mu is held.
func (m *member) accept(pos int64, batch []row, xmin, xmax int64) int {
	if m.s.opts.Dialect != sqldb.Postgres {
		return len(batch)
	}
	now := time.Now()
	for {
		expected := pos
		n := 0
		for _, r := range batch {
			if r.id != expected && r.id-1 > m.gap.settled {
				break
			}
			expected = r.id + 1
			n++
		}
		if n == len(batch) {
			m.gap = gapState{settled: m.gap.settled}
			return n
		}
		if n > 0 {
			// Deliver up to the hole; it is looked at on the next read.
			return n
		}
		if m.settle(pos, batch[len(batch)-1].id, xmin, xmax, now) {
			continue
		}
		return 0
	}
}

// settle decides whether the hole at pos can be skipped. Any id below
// probeMax was drawn before the probe snapshot, by a transaction that had
// committed (visible), aborted, or was running then. Once a later
// snapshot's xmin is past the probe's xmax, every transaction running at
// the probe has ended, so the rows visible now are all there will be up
// to probeMax. GapTimeout bounds the wait (a session holding a
// transaction open for hours must not stop every reader).
func (m *member) settle(pos, maxID, xmin, xmax int64, now time.Time) bool {
	g := &m.gap
	switch {
	case g.seen.IsZero() || g.at != pos:
		*g = gapState{at: pos, seen: now, settled: g.settled}
	case g.probeXmax == 0 && now.Sub(g.seen) >= settleDelay:
		g.probeXmax, g.probeMax = xmax, maxID
	case g.probeXmax != 0 && xmin >= g.probeXmax:
		g.settled = max(g.settled, g.probeMax)
		g.seen, g.probeXmax = time.Time{}, 0
		return true
	}
	if !g.seen.IsZero() && now.Sub(g.seen) >= m.s.opts.GapTimeout {
		m.s.log.Warn("sql consumer source: skipping ids never committed", "table", m.s.opts.Table, "from", pos, "waited", now.Sub(g.seen).Round(time.Millisecond))
		g.settled = max(g.settled, maxID)
		g.seen, g.probeXmax = time.Time{}, 0
		return true
	}
	return false
}

func (m *member) record(r row) consumer.Record {
	rec := consumer.Record{
		Topic:     m.s.opts.Topic,
		Partition: 0,
		Offset:    r.id,
		Value:     r.data,
	}
	if r.sender.Valid {
		rec.Key = []byte(r.sender.String)
	}
	if ts, ok := topLevelNumber(r.data, "timestamp"); ok {
		rec.Timestamp = time.UnixMilli(int64(ts * 1000))
	}
	return rec
}

// Seek moves the position.
func (m *member) Seek(ctx context.Context, offsets []consumer.TopicPartitionOffset) error {
	for _, o := range offsets {
		if err := m.s.check(o.Topic, o.Partition); err != nil {
			return err
		}
	}
	m.mu.Lock()
	owned := m.owned
	m.mu.Unlock()
	if !owned {
		return fmt.Errorf("%s[0]: %w", m.s.opts.Topic, consumer.ErrNotAssigned)
	}
	target := offsets[len(offsets)-1].Offset
	check := target >= 0 // an offset from the client: checked at the next read
	if target < 0 {
		b, err := m.s.bounds(ctx)
		if err != nil {
			return err
		}
		target = b.End
		if offsets[len(offsets)-1].Offset == consumer.OffsetBeginning {
			target = b.Beginning
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.posValid, m.check = target, true, check
	m.gap = gapState{settled: -1}
	m.epoch++
	return nil
}

// Commit stores the group's offset. A subscribed member must hold the
// partition: a member the group has moved on from would overwrite its new
// owner's progress (Kafka refuses such commits too).
func (m *member) Commit(ctx context.Context, offsets []consumer.TopicPartitionOffset) error {
	for _, o := range offsets {
		if err := m.s.check(o.Topic, o.Partition); err != nil {
			return err
		}
	}
	m.mu.Lock()
	refused := m.mode == modeSubscribed && !m.owned
	m.mu.Unlock()
	if refused {
		return fmt.Errorf("commit for %s[0]: partition assigned to another member: %w", m.s.opts.Topic, consumer.ErrRebalanced)
	}
	if len(offsets) == 0 {
		return nil
	}
	o := offsets[len(offsets)-1]
	return m.s.commit(ctx, m.opts.Group, o.Offset, o.Metadata)
}

// Committed returns the group's committed offset.
func (m *member) Committed(ctx context.Context, tps []consumer.TopicPartition) ([]consumer.TopicPartitionOffset, error) {
	out := []consumer.TopicPartitionOffset{}
	for _, tp := range tps {
		if err := m.s.check(tp.Topic, tp.Partition); err != nil {
			return nil, err
		}
	}
	if len(tps) == 0 {
		return out, nil
	}
	off, meta, ok, err := m.s.committed(ctx, m.opts.Group)
	if err != nil || !ok {
		return out, err
	}
	return append(out, consumer.TopicPartitionOffset{Topic: m.s.opts.Topic, Partition: 0, Offset: off, Metadata: meta}), nil
}

// Close leaves the group.
func (m *member) Close(ctx context.Context) error {
	return m.Unsubscribe(ctx)
}
