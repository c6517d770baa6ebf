package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// Exactly once into Kafka (exactly_once: true, the default).
//
// A spool stream writes each batch in one Kafka transaction of its own
// producer, whose transactional id is "parley/" + the stream's id (the
// spool's identity and the broker's name). The transaction holds the
// events and one record in the positions topic (positions_topic, default
// parley_positions: compacted, one partition), keyed by the stream and the
// data topic, whose value is the position the batch reaches. Consumers
// reading read_committed see the events and the position together or not
// at all.
//
// Position starts a new producer for the transactional id:
// InitProducerID fences the previous one (a crashed parley, or the handle
// this one replaces) and lets the coordinator finish any transaction it
// left: committed if its commit was under way, aborted otherwise. Only
// then does it read the positions topic read_committed, to its end, and
// take the stream's last record. After any failed write the stream starts
// over this way, so a commit with an unknown outcome is settled before the
// worker decides what to write again.

// DefaultPositionsTopic is the default of positions_topic.
const DefaultPositionsTopic = "parley_positions"

// transactionTimeout bounds a transaction the coordinator waits for
// before aborting it (a parley that died mid-batch holds back
// read_committed consumers of the partitions it wrote this long at most).
const transactionTimeout = 30 * time.Second

// TransactionalIDPrefix starts every transactional id parley uses (grant
// WRITE and DESCRIBE on it, as a prefixed ACL).
const TransactionalIDPrefix = "parley/"

// ExactlyOnce is the kafka broker with transactional streams: what the
// spool delivers goes in transactions that also carry its position. It is
// what the registry opens unless exactly_once is false.
type ExactlyOnce struct{ *Broker }

var (
	_ broker.Positioned = ExactlyOnce{}
	_ broker.Pinger     = ExactlyOnce{}
)

// Unwrap returns the plain broker.
func (e ExactlyOnce) Unwrap() broker.Broker { return e.Broker }

// OpenStream returns the stream id's handle. It does no I/O: the first
// Position call starts its producer, fencing any earlier one.
func (e ExactlyOnce) OpenStream(_ context.Context, id string) (broker.Stream, error) {
	if id == "" {
		return nil, errors.New("kafka: empty stream id")
	}
	b := e.Broker
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, broker.ErrClosed
	}
	return &stream{b: b, txnID: TransactionalIDPrefix + id, key: []byte(b.cfg.Topic + " " + id)}, nil
}

type stream struct {
	b     *Broker
	txnID string
	key   []byte // of the stream's records in the positions topic

	mu    sync.Mutex // guards cl against Close
	cl    *kgo.Client
	dirty bool   // a write failed: the next Position starts a new producer
	pos   uint64 // the position, once read
	known bool
}

// Position starts a producer for the stream if it has none (or its last
// write failed), which settles any transaction an earlier one left, then
// reads the stream's position from the positions topic.
func (s *stream) Position(ctx context.Context) (uint64, error) {
	if err := s.b.enter(); err != nil {
		return 0, err
	}
	defer s.b.exit()
	if s.cl == nil || s.dirty {
		s.reset()
		opts, err := s.b.cfg.clientOptions(s.b.log)
		if err != nil {
			return 0, err
		}
		opts = append(opts,
			kgo.TransactionalID(s.txnID),
			kgo.TransactionTimeout(transactionTimeout),
			// A batch follows the last at once, often before the
			// coordinator has finished it (CONCURRENT_TRANSACTIONS):
			// retry after 2ms instead of franz-go's 20ms.
			kgo.ConcurrentTransactionsBackoff(2*time.Millisecond),
			// A stream's batch comes whole from the spool: room for it all.
			kgo.MaxBufferedRecords(1<<20),
		)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return 0, fmt.Errorf("kafka: %w", err)
		}
		s.mu.Lock()
		s.cl, s.dirty, s.known = cl, false, false
		s.mu.Unlock()
		if err := s.b.ensurePositionsTopic(ctx); err != nil {
			s.dirty = true
			return 0, err
		}
		if _, _, err := cl.ProducerID(ctx); err != nil {
			s.dirty = true
			return 0, s.classify(fmt.Errorf("start transactional producer %s: %w", s.txnID, err))
		}
	}
	p, err := s.b.readPosition(ctx, s.key)
	if err != nil {
		return 0, err
	}
	s.pos, s.known = p, true
	return p, nil
}

// PublishAt writes evs and the position next in one transaction.
func (s *stream) PublishAt(ctx context.Context, prev, next uint64, evs ...event.Event) error {
	if err := s.b.enter(); err != nil {
		return err
	}
	defer s.b.exit()
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case s.cl == nil || s.dirty || !s.known:
		return fmt.Errorf("kafka: stream %s: PublishAt before Position", s.txnID)
	case prev != s.pos:
		return fmt.Errorf("kafka: stream %s is at %d, not %d: %w", s.txnID, s.pos, prev, broker.ErrPositionMoved)
	}
	recs, err := s.b.rb.build(evs)
	if err != nil {
		return err // too large: nothing sent
	}
	recs = append(recs, kgo.Record{Topic: s.b.cfg.PositionsTopic, Key: s.key, Value: strconv.AppendUint(nil, next, 10)})
	if err := s.transact(ctx, recs); err != nil {
		s.dirty = true
		return err
	}
	s.pos = next
	return nil
}

func (s *stream) transact(ctx context.Context, recs []kgo.Record) error {
	cl := s.cl
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("kafka: begin transaction: %w", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	wg.Add(len(recs))
	for i := range recs {
		// The caller's context: a canceled write is abandoned whole, and
		// the next Position settles what became of it.
		cl.Produce(ctx, &recs[i], func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if first != nil {
		return s.classify(first)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return s.classify(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// classify is the broker's, with the transactional id in the message for
// the errors that are about it.
func (s *stream) classify(err error) error {
	if errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		return fmt.Errorf("kafka: not authorized to use transactional id %q (grant WRITE and DESCRIBE on the transactional id prefix %q, or set exactly_once: false): %w", s.txnID, TransactionalIDPrefix, err)
	}
	return s.b.classify(err)
}

// reset closes the stream's producer. Closing abandons a transaction in
// flight; the next producer's InitProducerID settles it.
func (s *stream) reset() {
	s.mu.Lock()
	cl := s.cl
	s.cl, s.known = nil, false
	s.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
}

// streamBatch is the batch a stream asks the spool for: a transaction
// costs about two milliseconds whatever its size, which 5,000 events (about
// 800 KB of Rasa events) make small against the produce itself
// (docs/benchmarks.md#exactly-once).
const streamBatch = 5000

var _ broker.BatchHinter = (*stream)(nil)

// MinBatch asks the spool for batches of up to streamBatch events.
func (s *stream) MinBatch() int { return streamBatch }

func (s *stream) Close(context.Context) error {
	s.reset()
	return nil
}

// ensurePositionsTopic creates the positions topic if it is missing: one
// partition, compacted (only each stream's last position matters).
func (b *Broker) ensurePositionsTopic(ctx context.Context) error {
	b.posTopicOnce.Lock()
	defer b.posTopicOnce.Unlock()
	if b.posTopicReady {
		return nil
	}
	topics, err := b.adm.ListTopics(ctx, b.cfg.PositionsTopic)
	if err != nil {
		return fmt.Errorf("kafka: look up positions topic %q: %w", b.cfg.PositionsTopic, err)
	}
	if !topics.Has(b.cfg.PositionsTopic) {
		cleanup, segment := "compact", "3600000"
		resp, err := b.adm.CreateTopic(ctx, 1, b.cfg.ReplicationFactor, map[string]*string{
			"cleanup.policy": &cleanup,
			"segment.ms":     &segment, // compact within the hour, not the week
		}, b.cfg.PositionsTopic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create positions topic %q (create it, compacted with one partition, or grant CREATE; or set exactly_once: false): %w", b.cfg.PositionsTopic, err)
		}
		if err == nil {
			b.log.Info("created kafka positions topic", "topic", b.cfg.PositionsTopic)
		}
	}
	b.posTopicReady = true
	return nil
}

// positionsEnd returns the high watermark of the positions topic,
// waiting a little for a topic just created to show in the metadata.
func (b *Broker) positionsEnd(ctx context.Context) (kadm.ListedOffset, error) {
	topic := b.cfg.PositionsTopic
	deadline := time.Now().Add(newTopicGrace)
	for {
		ends, err := b.adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return kadm.ListedOffset{}, fmt.Errorf("kafka: end of positions topic %q: %w", topic, err)
		}
		end, ok := ends.Lookup(topic, 0)
		if ok && end.Err == nil {
			return end, nil
		}
		if !ok {
			end.Err = kerr.UnknownTopicOrPartition
		}
		if time.Now().After(deadline) || !broker.Sleep(ctx, 100*time.Millisecond) {
			return kadm.ListedOffset{}, fmt.Errorf("kafka: end of positions topic %q: %w", topic, end.Err)
		}
	}
}

// readPosition reads the positions topic, read_committed, up to the end
// it has now, and returns the last position recorded under key (0 if
// none). Control records (transaction markers) are kept so that reaching
// the end is visible even when the last offsets are markers; read_committed
// holds the fetch back at the first open transaction, so the read waits
// until every transaction written before it is decided.
func (b *Broker) readPosition(ctx context.Context, key []byte) (uint64, error) {
	topic := b.cfg.PositionsTopic
	end, err := b.positionsEnd(ctx)
	if err != nil {
		return 0, err
	}
	if end.Offset <= 0 {
		return 0, nil
	}
	opts, err := b.cfg.ConnectionOptions(b.log)
	if err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return 0, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	var pos uint64
	var next int64
	for next < end.Offset {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("kafka: read positions topic %q (%d of %d): %w", topic, next, end.Offset, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil && !kerr.IsRetriable(ferr) {
			return 0, fmt.Errorf("kafka: read positions topic %q: %w", topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = max(next, r.Offset+1)
			if r.Attrs.IsControl() || string(r.Key) != string(key) {
				return
			}
			if p, err := strconv.ParseUint(string(r.Value), 10, 64); err == nil {
				pos = p
			} else {
				b.log.Error("kafka: positions topic holds a record that is not a position; ignored", "topic", topic, "offset", r.Offset)
			}
		})
	}
	return pos, nil
}
