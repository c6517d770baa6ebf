package kafkasrc

import (
	"context"
	"errors"
	"fmt"
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
			_ = old.LeaveGroupContext(ctx)
		}
		old.Close()
	}
	m.mu.Lock()
	clear(m.assigned)
	clear(m.ready)
	clear(m.pending)
	m.mu.Unlock()
	m.clMu.Lock()
	m.cl, m.group = cl, group
	m.clMu.Unlock()
}

func (m *member) resetOffset() kgo.Offset {
	if m.opts.Reset == consumer.ResetEarliest {
		return kgo.NewOffset().AtStart()
	}
	return kgo.NewOffset().AtEnd()
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
// policy resolved to an offset (so that franz-go tracks the partition and
// later seeks apply).
func (m *member) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var unset []string
	for t, ps := range offsets {
		for _, o := range ps {
			if o.EpochOffset().Offset < 0 {
				unset = append(unset, t)
				break
			}
		}
	}
	var listed kadm.ListedOffsets
	if len(unset) > 0 {
		var err error
		if m.opts.Reset == consumer.ResetEarliest {
			listed, err = m.s.adm.ListStartOffsets(ctx, unset...)
		} else {
			listed, err = m.s.adm.ListEndOffsets(ctx, unset...)
		}
		if err != nil {
			return offsets, nil // franz-go applies the reset policy itself
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, ps := range offsets {
		for p, o := range ps {
			tp := consumer.TopicPartition{Topic: t, Partition: p}
			if off, ok := m.pending[tp]; ok {
				ps[p] = kgo.NewOffset().At(off).WithEpoch(-1)
				delete(m.pending, tp)
			} else if o.EpochOffset().Offset < 0 {
				if l, ok := listed.Lookup(t, p); ok && l.Err == nil && l.Offset >= 0 {
					ps[p] = kgo.NewOffset().At(l.Offset).WithEpoch(-1)
				}
			}
			m.ready[tp] = true
		}
	}
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
	start := map[string]map[int32]kgo.Offset{}
	for _, tp := range tps {
		o := m.resetOffset()
		if c, ok := committed.Lookup(tp.Topic, tp.Partition); ok && c.Err == nil && c.At >= 0 {
			o = kgo.NewOffset().At(c.At)
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
	m.mu.Unlock()
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
		if ferr == nil {
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
	for i, o := range offsets {
		off, err := m.s.resolve(ctx, o.Topic, o.Partition, o.Offset)
		if err != nil {
			return err
		}
		resolved[i] = off
	}
	m.mu.Lock()
	for i, o := range offsets {
		tp := o.TP()
		if !m.ready[tp] {
			m.pending[tp] = resolved[i]
			continue
		}
		if set[o.Topic] == nil {
			set[o.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: resolved[i]}
	}
	m.mu.Unlock()
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
		uncommitted := map[string]map[int32]kgo.EpochOffset{}
		for _, o := range offsets {
			if uncommitted[o.Topic] == nil {
				uncommitted[o.Topic] = map[int32]kgo.EpochOffset{}
			}
			uncommitted[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
		}
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
		return commitError(m.opts.Group, cerr)
	}
	os := kadm.Offsets{}
	for _, o := range offsets {
		os.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1, Metadata: o.Metadata})
	}
	resp, err := m.s.adm.CommitOffsets(ctx, m.opts.Group, os)
	if err == nil {
		err = resp.Error()
	}
	return commitError(m.opts.Group, err)
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
		out = append(out, consumer.TopicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: o.At, Metadata: o.Metadata})
	}
	return out, nil
}

// Close leaves the group and closes the client.
func (m *member) Close(ctx context.Context) error {
	m.replace(ctx, nil, false)
	return nil
}
