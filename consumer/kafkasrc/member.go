package kafkasrc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/parleyhq/parley/consumer"
)

// member is one REST consumer instance: a franz-go client that is a group
// member (subscribe) or reads given partitions (assign).
type member struct {
	s    *Source
	opts consumer.ConsumerOptions

	// cl is replaced by Subscribe and Assign, which the engine never runs
	// concurrently with Fetch or Seek; clMu guards it for the calls that
	// may (Commit, Committed, Assignment).
	clMu  sync.RWMutex
	cl    *kgo.Client
	group bool // cl is a group member

	mu       sync.Mutex
	assigned map[consumer.TopicPartition]bool
	// ready marks assigned partitions whose start offsets franz-go has
	// set (after AdjustFetchOffsetsFn): only those can be moved with
	// SetOffsets. Seeks of the others wait in pending until then.
	ready   map[consumer.TopicPartition]bool
	pending map[consumer.TopicPartition]int64
	// invalid holds, under auto.offset.reset=none, the partitions whose
	// position is out of range (or that have no committed offset): Fetch
	// fails until the client seeks them, as Kafka's poll() throws.
	invalid map[consumer.TopicPartition]error
}

var _ consumer.Consumer = (*member)(nil)

func (m *member) client() (*kgo.Client, bool) {
	m.clMu.RLock()
	defer m.clMu.RUnlock()
	return m.cl, m.group
}

// replace closes the current client (leaving the group, which revokes its
// partitions through the callbacks) and installs cl.
func (m *member) replace(ctx context.Context, cl *kgo.Client, group bool) {
	// The old client stays installed while it leaves: the revoke
	// callback commits through it, as the member it still is.
	old, oldGroup := m.client()
	if old != nil {
		if oldGroup {
			m.s.setGroupMember(m, false)
			_ = old.LeaveGroupContext(ctx)
		}
		old.Close()
	}
	m.mu.Lock()
	clear(m.assigned)
	clear(m.ready)
	clear(m.pending)
	clear(m.invalid)
	m.mu.Unlock()
	m.clMu.Lock()
	m.cl, m.group = cl, group
	m.clMu.Unlock()
}

// resetOffset is franz-go's reset policy, for what parley does not check
// itself (a log truncated under a reader): none makes franz-go return
// the error rather than reset.
func (m *member) resetOffset() kgo.Offset {
	switch m.opts.Reset {
	case consumer.ResetEarliest:
		return kgo.NewOffset().AtStart()
	case consumer.ResetNone:
		return kgo.NoResetOffset()
	}
	return kgo.NewOffset().AtEnd()
}

// place returns where reading tp starts for a wanted position off (-1:
// the group has no committed offset), applying auto.offset.reset to a
// position outside b, as Kafka does on OffsetOutOfRange. A reset is
// returned for reporting; under none the partition is marked invalid.
// m.mu is held.
func (m *member) place(tp consumer.TopicPartition, off int64, b consumer.PartitionOffsets) (int64, *consumer.ResetEvent) {
	delete(m.invalid, tp)
	if off >= 0 && b.InRange(off) {
		return off, nil
	}
	to, ok := m.opts.Reset.Apply(b)
	if !ok {
		m.invalid[tp] = consumer.OutOfRangeError(tp.Topic, tp.Partition, off, b)
		return b.End, nil
	}
	if off < 0 {
		return to, nil // no commit: the policy's start, not a reset
	}
	return to, &consumer.ResetEvent{Topic: tp.Topic, Partition: tp.Partition, From: off, To: to, Policy: m.opts.Reset, Range: b}
}

// report tells the engine of resets; m.mu is not held.
func (m *member) report(resets []*consumer.ResetEvent) {
	for _, r := range resets {
		if r != nil && m.opts.OnReset != nil {
			m.opts.OnReset(*r)
		}
	}
}

// Subscribe makes a group member for topics.
func (m *member) Subscribe(ctx context.Context, topics []string) error {
	opts := append(slices.Clip(m.s.opts.ClientOpts),
		kgo.ConsumerGroup(m.opts.Group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(), // the engine commits what it delivered
		kgo.ConsumeResetOffset(m.resetOffset()),
		kgo.OnPartitionsAssigned(m.onAssigned),
		kgo.OnPartitionsRevoked(m.onRevoked),
		kgo.OnPartitionsLost(m.onRevoked),
		kgo.AdjustFetchOffsetsFn(m.adjust),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	m.replace(ctx, cl, true)
	m.s.setGroupMember(m, true)
	return nil
}

// Unsubscribe leaves the group.
func (m *member) Unsubscribe(ctx context.Context) error {
	m.replace(ctx, nil, false)
	return nil
}

func tpsOf(ps map[string][]int32) []consumer.TopicPartition {
	var out []consumer.TopicPartition
	for t, parts := range ps {
		for _, p := range parts {
			out = append(out, consumer.TopicPartition{Topic: t, Partition: p})
		}
	}
	return out
}

func (m *member) onAssigned(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tp := range tpsOf(ps) {
		m.assigned[tp] = true
	}
}

// onRevoked lets the engine commit what it delivered from the partitions
// (a blocking commit is what franz-go recommends here), then forgets them.
func (m *member) onRevoked(ctx context.Context, _ *kgo.Client, ps map[string][]int32) {
	tps := tpsOf(ps)
	if len(tps) == 0 {
		return
	}
	if m.opts.OnRevoked != nil {
		m.opts.OnRevoked(ctx, tps)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tp := range tps {
		delete(m.assigned, tp)
		delete(m.ready, tp)
		delete(m.pending, tp)
	}
}

// adjust sets the start offsets of newly assigned partitions: a seek made
// before they were ready, else the committed offset, else the reset
// policy, each checked against the partition's bounds (so that an
// out-of-range commit is reset, and reported, rather than followed).
// Offsets are resolved so that franz-go tracks the partition and later
// seeks apply.
func (m *member) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	topics := make([]string, 0, len(offsets))
	for t := range offsets {
		topics = append(topics, t)
	}
	bounds, err := m.s.bounds(ctx, topics...)
	if err != nil {
		m.s.log.Warn("kafka consumer: listing offsets to check start positions", "group", m.opts.Group, "err", err)
		return offsets, nil // franz-go applies the reset policy itself
	}
	var resets []*consumer.ResetEvent
	m.mu.Lock()
	for t, ps := range offsets {
		for p, o := range ps {
			tp := consumer.TopicPartition{Topic: t, Partition: p}
			want := o.EpochOffset().Offset
			if off, ok := m.pending[tp]; ok {
				want = off
				delete(m.pending, tp)
			}
			if b, ok := bounds[tp]; ok {
				at, r := m.place(tp, max(want, -1), b)
				resets = append(resets, r)
				ps[p] = kgo.NewOffset().At(at).WithEpoch(-1)
			} else if want >= 0 {
				ps[p] = kgo.NewOffset().At(want).WithEpoch(-1)
			}
			m.ready[tp] = true
		}
	}
	m.mu.Unlock()
	m.report(resets)
	return offsets, nil
}

// Assign reads partitions directly, from the group's committed offsets
// or the reset policy.
func (m *member) Assign(ctx context.Context, tps []consumer.TopicPartition) error {
	if len(tps) == 0 {
		m.replace(ctx, nil, false)
		return nil
	}
	committed, err := m.s.adm.FetchOffsets(ctx, m.opts.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("kafka: fetch committed offsets of group %q: %w", m.opts.Group, err)
	}
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	bounds, err := m.s.bounds(ctx, topics...)
	if err != nil {
		return err
	}
	start := map[string]map[int32]kgo.Offset{}
	var resets []*consumer.ResetEvent
	invalid := map[consumer.TopicPartition]error{}
	for _, tp := range tps {
		want := int64(-1)
		if c, ok := committed.Lookup(tp.Topic, tp.Partition); ok && c.Err == nil && c.At >= 0 {
			want = c.At
		}
		o := m.resetOffset()
		if b, ok := bounds[tp]; ok {
			m.mu.Lock()
			at, r := m.place(tp, want, b)
			if err := m.invalid[tp]; err != nil {
				invalid[tp] = err
			}
			m.mu.Unlock()
			resets = append(resets, r)
			o = kgo.NewOffset().At(at)
		} else if want >= 0 {
			o = kgo.NewOffset().At(want)
		}
		if start[tp.Topic] == nil {
			start[tp.Topic] = map[int32]kgo.Offset{}
		}
		start[tp.Topic][tp.Partition] = o
	}
	cl, err := kgo.NewClient(append(slices.Clip(m.s.opts.ClientOpts), kgo.ConsumePartitions(start))...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	m.replace(ctx, cl, false)
	m.mu.Lock()
	for _, tp := range tps {
		m.assigned[tp] = true
		m.ready[tp] = true
	}
	maps.Copy(m.invalid, invalid) // replace cleared them
	m.mu.Unlock()
	m.report(resets)
	return nil
}

// Assignment returns the partitions read.
func (m *member) Assignment(ctx context.Context) ([]consumer.TopicPartition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]consumer.TopicPartition, 0, len(m.assigned))
	for tp := range m.assigned {
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b consumer.TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out, nil
}

// Fetch polls up to max records.
func (m *member) Fetch(ctx context.Context, max int) ([]consumer.Record, error) {
	cl, _ := m.client()
	if cl == nil {
		<-ctx.Done()
		return nil, nil
	}
	if err := m.invalidErr(); err != nil {
		return nil, err
	}
	var fs kgo.Fetches
	if ctx.Err() != nil {
		//lint:ignore SA1012 franz-go documents nil as "return what is buffered, without waiting"
		fs = cl.PollRecords(nil, max)
	} else {
		fs = cl.PollRecords(ctx, max)
	}
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		if ferr == nil && errors.Is(err, kerr.OffsetOutOfRange) {
			ferr = fmt.Errorf("kafka: fetch %s[%d]: %v: %w", t, p, err, consumer.ErrOffsetOutOfRange)
		} else if ferr == nil {
			ferr = fmt.Errorf("kafka: fetch %s[%d]: %w", t, p, err)
		}
	})
	recs := make([]consumer.Record, 0, fs.NumRecords())
	// The records' headers share one allocation per fetch rather than one
	// per record (parley's records carry two headers each).
	nh := 0
	fs.EachRecord(func(r *kgo.Record) { nh += len(r.Headers) })
	hdrs := make([]consumer.Header, 0, nh)
	fs.EachRecord(func(r *kgo.Record) {
		rec := consumer.Record{
			Topic:     r.Topic,
			Partition: r.Partition,
			Offset:    r.Offset,
			Key:       r.Key,
			Value:     r.Value,
			Timestamp: r.Timestamp,
		}
		if len(r.Headers) > 0 {
			at := len(hdrs)
			for _, h := range r.Headers {
				hdrs = append(hdrs, consumer.Header{Key: h.Key, Value: h.Value})
			}
			rec.Headers = hdrs[at:len(hdrs):len(hdrs)]
		}
		recs = append(recs, rec)
	})
	if len(recs) == 0 && ferr != nil {
		return nil, ferr
	}
	if ferr != nil {
		m.s.log.Warn("kafka consumer fetch", "group", m.opts.Group, "err", ferr)
	}
	return recs, nil
}

// invalidErr returns the error of an out-of-range partition under
// auto.offset.reset=none, if any.
func (m *member) invalidErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first consumer.TopicPartition
	var err error
	for tp, e := range m.invalid {
		if err == nil || tp.Topic < first.Topic || (tp.Topic == first.Topic && tp.Partition < first.Partition) {
			first, err = tp, e
		}
	}
	return err
}

// Seek moves positions of assigned partitions.
func (m *member) Seek(ctx context.Context, offsets []consumer.TopicPartitionOffset) error {
	cl, _ := m.client()
	m.mu.Lock()
	for _, o := range offsets {
		if !m.assigned[o.TP()] {
			m.mu.Unlock()
			return fmt.Errorf("%s[%d]: %w", o.Topic, o.Partition, consumer.ErrNotAssigned)
		}
	}
	m.mu.Unlock()
	set := map[string]map[int32]kgo.EpochOffset{}
	resolved := make([]int64, len(offsets))
	var explicit []string
	for i, o := range offsets {
		off, err := m.s.resolve(ctx, o.Topic, o.Partition, o.Offset)
		if err != nil {
			return err
		}
		resolved[i] = off
		if o.Offset >= 0 && !slices.Contains(explicit, o.Topic) {
			explicit = append(explicit, o.Topic)
		}
	}
	var bounds map[consumer.TopicPartition]consumer.PartitionOffsets
	if len(explicit) > 0 {
		var err error
		if bounds, err = m.s.bounds(ctx, explicit...); err != nil {
			return err
		}
	}
	var resets []*consumer.ResetEvent
	m.mu.Lock()
	for i, o := range offsets {
		tp := o.TP()
		if !m.ready[tp] {
			m.pending[tp] = resolved[i] // checked when the partition starts
			continue
		}
		delete(m.invalid, tp)
		if b, ok := bounds[tp]; ok && o.Offset >= 0 {
			var r *consumer.ResetEvent
			resolved[i], r = m.place(tp, resolved[i], b)
			resets = append(resets, r)
		}
		if set[o.Topic] == nil {
			set[o.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: resolved[i]}
	}
	m.mu.Unlock()
	m.report(resets)
	if len(set) > 0 && cl != nil {
		cl.SetOffsets(set)
	}
	return nil
}

// Commit commits offsets for the group: as the member (with its
// generation) when subscribed, else as a simple consumer.
func (m *member) Commit(ctx context.Context, offsets []consumer.TopicPartitionOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	cl, group := m.client()
	if group && cl != nil {
		return commitError(m.opts.Group, m.commitAsMember(ctx, cl, offsets))
	}
	os := kadm.Offsets{}
	for _, o := range offsets {
		os.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1, Metadata: tagMetadata(m.opts.Owner, o.Metadata)})
	}
	resp, err := m.s.adm.CommitOffsets(ctx, m.opts.Group, os)
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) {
		// Kafka takes commits from outside a group only while the group
		// has no members. Mix's collector subscribes one instance and
		// reads (and commits) through assigned ones in the same group: a
		// live member of the group in this process commits for them.
		if gcl := m.s.groupClient(m.opts.Group, m); gcl != nil {
			err = m.commitAsMember(ctx, gcl, offsets)
		}
	}
	return commitError(m.opts.Group, err)
}

// commitAsMember commits offsets through cl, a member of the group, with
// the owner's tag in each commit's metadata.
func (m *member) commitAsMember(ctx context.Context, cl *kgo.Client, offsets []consumer.TopicPartitionOffset) error {
	uncommitted := map[string]map[int32]kgo.EpochOffset{}
	meta := map[consumer.TopicPartition]string{}
	for _, o := range offsets {
		if uncommitted[o.Topic] == nil {
			uncommitted[o.Topic] = map[int32]kgo.EpochOffset{}
		}
		uncommitted[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
		meta[o.TP()] = tagMetadata(m.opts.Owner, o.Metadata)
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				if md, ok := meta[consumer.TopicPartition{Topic: t.Topic, Partition: t.Partitions[j].Partition}]; ok && md != "" {
					t.Partitions[j].Metadata = &md
				}
			}
		}
		return nil
	})
	var cerr error
	cl.CommitOffsetsSync(ctx, uncommitted, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return cerr
}

func commitError(group string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID),
		errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.FencedInstanceID):
		return fmt.Errorf("kafka: commit for group %q: %v: %w", group, err, consumer.ErrRebalanced)
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("kafka: commit for group %q: %w", group, consumer.ErrPartitionNotFound)
	}
	return fmt.Errorf("kafka: commit for group %q: %w", group, err)
}

// Committed reads the group's committed offsets.
func (m *member) Committed(ctx context.Context, tps []consumer.TopicPartition) ([]consumer.TopicPartitionOffset, error) {
	resp, err := m.s.adm.FetchOffsets(ctx, m.opts.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("kafka: fetch committed offsets of group %q: %w", m.opts.Group, err)
	}
	out := []consumer.TopicPartitionOffset{}
	for _, tp := range tps {
		o, ok := resp.Lookup(tp.Topic, tp.Partition)
		if !ok || o.Err != nil || o.At < 0 {
			continue
		}
		_, meta := untagMetadata(o.Metadata)
		out = append(out, consumer.TopicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: o.At, Metadata: meta})
	}
	return out, nil
}

// Close leaves the group and closes the client.
func (m *member) Close(ctx context.Context) error {
	m.replace(ctx, nil, false)
	return nil
}
