package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// settings are a consumer instance's configuration from its create
// request.
type settings struct {
	reset          OffsetReset
	autoCommit     bool          // auto.commit.enable
	fetchMinBytes  int64         // fetch.min.bytes: wait for this much before answering
	requestTimeout time.Duration // consumer.request.timeout.ms: the records wait without ?timeout=
	binary         bool          // Confluent format "binary": key and value base64
}

// mode is how an instance gets its partitions.
type mode int

const (
	modeNone mode = iota
	modeSubscribed
	modeAssigned
)

// instance is one REST consumer instance.
type instance struct {
	e        *engine
	key      instanceKey
	owner    string // client_id of the token that created it; "" when open
	settings settings
	c        Consumer      // set before ready is closed
	ready    chan struct{} // closed once c is set (or creation failed)

	// ctx ends when the instance closes, interrupting a waiting read.
	ctx    context.Context
	cancel context.CancelFunc

	// turn serializes reads and the calls that move positions (seek,
	// subscribe, assign): a channel so that waiting for it honours ctx.
	turn chan struct{}

	mu             sync.Mutex
	closed         bool
	lastUsed       time.Time
	active         int // requests in progress
	mode           mode
	topics         []string         // subscription
	assigned       []TopicPartition // manual assignment
	pending        []Record         // fetched, not yet delivered (over max_bytes)
	delivered      map[TopicPartition]int64
	autoCommitted  map[TopicPartition]int64
	lastAutoCommit time.Time
	interrupt      context.CancelFunc // cancels the read in progress
	journal        *journal           // records delivered, for SSE resumption
	stream         *streamTurn        // the SSE stream serving the instance, if any
	resets         []ResetEvent       // positions reset, not yet told to the client
}

func newInstance(e *engine, k instanceKey, owner string, s settings) *instance {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	return &instance{
		e: e, key: k, owner: owner, settings: s,
		ready:          make(chan struct{}),
		ctx:            ctx,
		cancel:         cancel,
		turn:           make(chan struct{}, 1),
		lastUsed:       now,
		lastAutoCommit: now,
		delivered:      map[TopicPartition]int64{},
		autoCommitted:  map[TopicPartition]int64{},
	}
}

// idleSince is how long the instance has had no request in progress.
func (in *instance) idleSince(now time.Time) time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.active > 0 {
		return 0
	}
	return now.Sub(in.lastUsed)
}

// acquire marks a request in progress; false if the instance is closed.
func (in *instance) acquire(now time.Time) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return false
	}
	in.active++
	in.lastUsed = now
	return true
}

// release ends a request started by acquire.
func (in *instance) release() {
	in.mu.Lock()
	in.active--
	in.lastUsed = time.Now()
	in.mu.Unlock()
}

// touch marks activity during a long request (an SSE stream).
func (in *instance) touch() {
	in.mu.Lock()
	in.lastUsed = time.Now()
	in.mu.Unlock()
}

// take waits for the instance's turn; interrupt asks a waiting read to
// return first, as Kafka's wakeup() does, so that a seek or subscription
// change does not wait out a long poll.
func (in *instance) take(ctx context.Context, interrupt bool) error {
	if interrupt {
		in.mu.Lock()
		if in.interrupt != nil {
			in.interrupt()
		}
		in.mu.Unlock()
	}
	select {
	case in.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-in.ctx.Done():
		return ErrConsumerNotFound
	}
}

func (in *instance) done() { <-in.turn }

// subscribe replaces the subscription.
func (in *instance) subscribe(ctx context.Context, topics []string) error {
	if err := in.take(ctx, true); err != nil {
		return err
	}
	defer in.done()
	m := in.currentMode()
	if m == modeAssigned {
		return illegalState("Subscription to topics, partitions and pattern are mutually exclusive.")
	}
	if err := in.c.Subscribe(ctx, topics); err != nil {
		return err
	}
	in.mu.Lock()
	in.mode = modeSubscribed
	in.topics = slices.Clone(topics)
	in.mu.Unlock()
	return nil
}

// unsubscribe drops the subscription (or the manual assignment, as
// Kafka's unsubscribe does).
func (in *instance) unsubscribe(ctx context.Context) error {
	if err := in.take(ctx, true); err != nil {
		return err
	}
	defer in.done()
	in.maybeAutoCommit(ctx, time.Now(), true)
	var err error
	m := in.currentMode()
	switch m {
	case modeSubscribed:
		err = in.c.Unsubscribe(ctx)
	case modeAssigned:
		err = in.c.Assign(ctx, nil)
	}
	in.mu.Lock()
	in.mode, in.topics, in.assigned = modeNone, nil, nil
	in.pending = nil
	clear(in.delivered)
	clear(in.autoCommitted)
	in.mu.Unlock()
	return err
}

// subscription returns the subscribed topics.
func (in *instance) subscription() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.topics)
}

// assign replaces the manual assignment.
func (in *instance) assign(ctx context.Context, tps []TopicPartition) error {
	if err := in.take(ctx, true); err != nil {
		return err
	}
	defer in.done()
	m := in.currentMode()
	if m == modeSubscribed {
		return illegalState("Subscription to topics, partitions and pattern are mutually exclusive.")
	}
	in.maybeAutoCommit(ctx, time.Now(), true)
	if err := in.c.Assign(ctx, tps); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.assigned = slices.Clone(tps)
	in.mode = modeAssigned
	if len(tps) == 0 {
		in.mode = modeNone
	}
	keep := func(tp TopicPartition) bool { return slices.Contains(tps, tp) }
	in.dropPending(func(tp TopicPartition) bool { return !keep(tp) })
	drop := func(tp TopicPartition, _ int64) bool { return !keep(tp) }
	maps.DeleteFunc(in.delivered, drop)
	maps.DeleteFunc(in.autoCommitted, drop)
	return nil
}

// assignment returns the partitions the instance reads.
func (in *instance) assignment(ctx context.Context) ([]TopicPartition, error) {
	in.mu.Lock()
	m, assigned := in.mode, slices.Clone(in.assigned)
	in.mu.Unlock()
	switch m {
	case modeAssigned:
		return assigned, nil
	case modeSubscribed:
		return in.c.Assignment(ctx)
	}
	return []TopicPartition{}, nil
}

// topicsRead returns the topics the instance reads (subscribed or
// assigned).
func (in *instance) topicsRead() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.mode == modeSubscribed {
		return slices.Clone(in.topics)
	}
	var ts []string
	for _, tp := range in.assigned {
		if !slices.Contains(ts, tp.Topic) {
			ts = append(ts, tp.Topic)
		}
	}
	return ts
}

// readOptions bound one read.
type readOptions struct {
	wait       time.Duration
	maxRecords int
	maxBytes   int64
}

// read returns the next records: at once if some are buffered or
// available, else as soon as some arrive, else nothing after opts.wait.
// An interrupted read (a seek, a subscription change, the instance
// closing) returns what it has.
func (in *instance) read(ctx context.Context, opts readOptions) ([]Record, error) {
	if err := in.take(ctx, false); err != nil {
		return nil, err
	}
	defer in.done()
	m := in.currentMode()
	if m == modeNone {
		return nil, illegalState("Consumer is not subscribed to any topics or assigned any partitions.")
	}
	in.maybeAutoCommit(ctx, time.Now(), false)

	deadline := time.Now().Add(opts.wait)
	var (
		out   []Record
		bytes int64
		over  []Record // fetched beyond max_bytes
	)
	// add takes records up to max_bytes (at least one) and keeps the
	// rest, in order, for the next read.
	add := func(recs []Record) {
		if len(over) > 0 {
			over = append(over, recs...)
			return
		}
		k := 0
		for ; k < len(recs); k++ {
			sz := recs[k].size()
			if (len(out) > 0 || k > 0) && bytes+sz > opts.maxBytes {
				break
			}
			bytes += sz
		}
		if len(out) == 0 {
			out = recs[:k:k]
		} else {
			out = append(out, recs[:k]...)
		}
		over = append(over, recs[k:]...)
	}
	in.mu.Lock()
	buffered := in.pending
	in.pending = nil
	in.mu.Unlock()
	var rest []Record
	if len(buffered) > opts.maxRecords {
		buffered, rest = buffered[:opts.maxRecords], buffered[opts.maxRecords:]
	}
	add(buffered)
	over = append(over, rest...)

	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	stop := context.AfterFunc(in.ctx, cancel)
	defer stop()
	in.mu.Lock()
	in.interrupt = cancel
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.interrupt = nil
		in.mu.Unlock()
	}()

	var fetchErr error
	minBytes := max(in.settings.fetchMinBytes, 1)
	for len(over) == 0 && len(out) < opts.maxRecords && bytes < minBytes {
		waiting := rctx.Err() == nil
		if waiting {
			in.e.m.waiting.Inc()
		}
		recs, err := in.c.Fetch(rctx, opts.maxRecords-len(out))
		if waiting {
			in.e.m.waiting.Dec()
		}
		add(recs)
		if err != nil {
			fetchErr = err
			break
		}
		if rctx.Err() != nil {
			break
		}
	}

	if ctx.Err() != nil {
		// The client is gone: keep the records for its next read rather
		// than count them as delivered.
		in.unread(append(out, over...))
		return nil, ctx.Err()
	}
	if len(out) == 0 && fetchErr != nil && !errors.Is(fetchErr, context.Canceled) && !errors.Is(fetchErr, context.DeadlineExceeded) {
		in.unread(over)
		return nil, fetchErr
	}
	if fetchErr != nil {
		in.e.log.Warn("consumer fetch", "group", in.key.group, "name", in.key.name, "err", fetchErr)
	}
	in.unread(over)
	in.markDelivered(out)
	return out, nil
}

// unread puts records back in front of the buffer.
func (in *instance) unread(recs []Record) {
	if len(recs) == 0 {
		return
	}
	in.mu.Lock()
	in.pending = append(slices.Clone(recs), in.pending...)
	in.mu.Unlock()
}

// markDelivered records that recs were handed to the client.
func (in *instance) markDelivered(recs []Record) {
	if len(recs) == 0 {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		if in.journal != nil {
			in.journal.add(r.Topic, r.Partition, r.Offset)
		}
		// Records come in runs per partition: update the map once a run.
		if i+1 == len(recs) || recs[i+1].Partition != r.Partition || recs[i+1].Topic != r.Topic {
			in.delivered[TopicPartition{r.Topic, r.Partition}] = r.Offset + 1
		}
	}
	in.e.m.records.Add(float64(len(recs)))
}

// seek moves positions; offsets may be OffsetBeginning or OffsetEnd.
func (in *instance) seek(ctx context.Context, offsets []TopicPartitionOffset) error {
	if err := in.take(ctx, true); err != nil {
		return err
	}
	defer in.done()
	return in.seekLocked(ctx, offsets)
}

// seekLocked is seek for a caller that has the turn.
func (in *instance) seekLocked(ctx context.Context, offsets []TopicPartitionOffset) error {
	if err := in.c.Seek(ctx, offsets); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	moved := map[TopicPartition]bool{}
	for _, o := range offsets {
		tp := o.TP()
		moved[tp] = true
		if o.Offset >= 0 {
			// As Kafka's commitSync(): committing "everything fetched"
			// after a seek commits the position sought.
			in.delivered[tp] = o.Offset
		} else {
			delete(in.delivered, tp)
		}
	}
	in.dropPending(func(tp TopicPartition) bool { return moved[tp] })
	return nil
}

// commit commits offsets (next offsets to read), or everything delivered
// when offsets is nil.
func (in *instance) commit(ctx context.Context, offsets []TopicPartitionOffset) error {
	if offsets == nil {
		offsets = in.deliveredOffsets(nil)
		if len(offsets) == 0 {
			return nil
		}
	}
	return in.c.Commit(ctx, offsets)
}

// deliveredOffsets returns the delivered positions, only those not yet
// auto-committed when since is given.
func (in *instance) deliveredOffsets(since map[TopicPartition]int64) []TopicPartitionOffset {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []TopicPartitionOffset
	for tp, off := range in.delivered {
		if since != nil {
			if c, ok := since[tp]; ok && c == off {
				continue
			}
		}
		out = append(out, TopicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
	}
	slices.SortFunc(out, func(a, b TopicPartitionOffset) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// maybeAutoCommit commits delivered offsets when auto.commit.enable is on
// and the interval has passed (or force).
func (in *instance) maybeAutoCommit(ctx context.Context, now time.Time, force bool) {
	if !in.settings.autoCommit {
		return
	}
	in.mu.Lock()
	due := force || now.Sub(in.lastAutoCommit) >= in.e.cfg.AutoCommitInterval
	var since map[TopicPartition]int64
	if due {
		since = maps.Clone(in.autoCommitted)
		in.lastAutoCommit = now
	}
	in.mu.Unlock()
	if !due {
		return
	}
	offsets := in.deliveredOffsets(since)
	if len(offsets) == 0 {
		return
	}
	if err := in.c.Commit(ctx, offsets); err != nil {
		in.e.log.Warn("auto commit", "group", in.key.group, "name", in.key.name, "err", err)
		return
	}
	in.mu.Lock()
	for _, o := range offsets {
		in.autoCommitted[o.TP()] = o.Offset
	}
	in.mu.Unlock()
}

// onRevoked is the source's callback when the group takes partitions
// away: commit what was delivered from them (auto commit), then forget
// them so that "commit everything" does not commit for their new owner.
func (in *instance) onRevoked(ctx context.Context, tps []TopicPartition) {
	if in.settings.autoCommit {
		in.mu.Lock()
		var offsets []TopicPartitionOffset
		for _, tp := range tps {
			if off, ok := in.delivered[tp]; ok && in.autoCommitted[tp] != off {
				offsets = append(offsets, TopicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
			}
		}
		in.mu.Unlock()
		if len(offsets) > 0 {
			if err := in.c.Commit(ctx, offsets); err != nil {
				in.e.log.Warn("auto commit on revoke", "group", in.key.group, "name", in.key.name, "err", err)
			}
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	gone := map[TopicPartition]bool{}
	for _, tp := range tps {
		gone[tp] = true
		delete(in.delivered, tp)
		delete(in.autoCommitted, tp)
	}
	in.dropPending(func(tp TopicPartition) bool { return gone[tp] })
}

// close commits (auto commit), leaves the group and releases the source
// consumer. It is idempotent.
func (in *instance) close(ctx context.Context) error {
	<-in.ready
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	in.mu.Unlock()
	in.cancel() // interrupts a waiting read; take then succeeds
	select {
	case in.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	in.maybeAutoCommit(ctx, time.Now(), true)
	return in.c.Close(ctx)
}

// currentMode returns how the instance reads.
func (in *instance) currentMode() mode {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.mode
}

// dropPending forgets the buffered records of the partitions drop
// selects. in.mu is held.
func (in *instance) dropPending(drop func(TopicPartition) bool) {
	in.pending = slices.DeleteFunc(in.pending, func(r Record) bool { return drop(TopicPartition{r.Topic, r.Partition}) })
}

// ResetHeader is the records response header that tells the client its
// position was out of range and was moved by auto.offset.reset (one value
// per partition moved since the last response).
const ResetHeader = "Parley-Offset-Reset"

// onReset is the source's report of a position moved by
// auto.offset.reset: logged, counted, and kept for the client's next
// records response or stream event.
func (in *instance) onReset(ev ResetEvent) {
	in.e.log.Warn("consumer position out of range: reset", "group", in.key.group, "name", in.key.name,
		"topic", ev.Topic, "partition", ev.Partition, "from", ev.From, "to", ev.To,
		"auto.offset.reset", ev.Policy.String(), "beginning", ev.Range.Beginning, "end", ev.Range.End)
	in.e.m.resets.WithLabelValues(ev.Policy.String()).Inc()
	in.mu.Lock()
	if len(in.resets) < 1000 {
		in.resets = append(in.resets, ev)
	}
	in.mu.Unlock()
}

// takeResets returns the resets not yet told to the client.
func (in *instance) takeResets() []ResetEvent {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.resets
	in.resets = nil
	return out
}

// describe is the reset as the client is told it, e.g.
// "rasa_core_events:0 from=99999 to=12 policy=latest range=1-12".
func (ev ResetEvent) describe() string {
	return fmt.Sprintf("%s:%d from=%d to=%d policy=%s beginning=%d end=%d", ev.Topic, ev.Partition, ev.From, ev.To, ev.Policy, ev.Range.Beginning, ev.Range.End)
}
