package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"golang.org/x/sync/semaphore"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

func init() {
	broker.Register("kafka", func(sec *config.Section) (broker.Opener, error) {
		c, err := ParseConfig(sec)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, env broker.Env) (broker.Broker, error) {
			b, err := Open(ctx, c, env.LoggerOrDefault())
			if err != nil || !c.ExactlyOnce {
				return b, err
			}
			return ExactlyOnce{b}, nil
		}, nil
	})
}

// openProbeTimeout bounds the metadata request Open makes to find
// configuration problems (a missing topic, refused credentials) before the
// first publish; Rasa's connection check waits as long. When it runs out,
// Kafka counts as unreachable for now, which does not fail Open.
const openProbeTimeout = 5 * time.Second

// unknownTopicRetries is how many metadata loads in a row may report the
// topic missing before its records fail, so that a topic deleted while
// parley runs is an error in seconds rather than a hang.
const unknownTopicRetries = 3

// metadataMinAge is the least time between metadata loads.
const metadataMinAge = time.Second

// Broker produces events to one Kafka topic with an idempotent producer
// and acks=all (franz-go's defaults, set explicitly): Publish returns once
// every in-sync replica has each event, and retries inside the client
// cannot duplicate or reorder records of a partition.
type Broker struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
	log *slog.Logger
	rb  recordBuilder
	// room bounds the records produced and not yet acknowledged
	// (max_buffered_records). Publish waits for room with its own context,
	// so a canceled caller never blocks inside the client, and records are
	// produced without the caller's context, so one caller's cancellation
	// cannot fail the batch it shares with other callers' records.
	room *semaphore.Weighted

	mu       sync.Mutex
	closed   bool
	inflight int
	drained  chan struct{} // closed when inflight reaches 0 after Close began

	closeOnce sync.Once
	closeErr  error

	topicMissing  atomic.Bool // the last metadata or produce said so (missing.go)
	posTopicOnce  sync.Mutex  // guards posTopicReady
	posTopicReady bool
}

var (
	_ broker.Broker = (*Broker)(nil)
	_ broker.Pinger = (*Broker)(nil)
)

// Open creates the producer and checks the topic. Kafka being unreachable
// or the topic missing does not fail Open (it logs a warning, and
// publishes retry until Kafka is up and the topic exists; with
// create_topic Open creates it), but what retrying cannot fix does:
// unreadable certificate files, refused credentials, a failed TLS
// handshake, a malformed address.
func Open(ctx context.Context, c Config, log *slog.Logger) (*Broker, error) {
	c = c.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	log = log.With("broker", "kafka")
	if len(c.Seeds) == 0 {
		return nil, errors.New("kafka: no bootstrap servers (url)")
	}
	opts, err := c.clientOptions(log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	env, sendEnv := rasaEnvironment()
	b := &Broker{
		cfg: c,
		cl:  cl,
		adm: kadm.NewClient(cl),
		log: log,
		rb: recordBuilder{
			topic:         c.Topic,
			format:        c.Format,
			keyBySender:   c.PartitionBySender,
			convertIntent: c.ConvertIntentIDToString,
			maxBytes:      c.MaxMessageBytes,
		},
		room: semaphore.NewWeighted(int64(c.MaxBufferedRecords)),
	}
	if sendEnv {
		b.rb.env = []byte(env)
	}
	if c.ProtocolDefaulted {
		log.Warn("security_protocol not set and no sasl_username given: using PLAINTEXT instead of Rasa's default SASL_PLAINTEXT, which needs credentials")
	}

	pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	err = b.checkTopic(pctx, c.CreateTopic)
	cancel()
	if err != nil {
		cerr := b.classify(err)
		b.noteTopic(cerr)
		if ctx.Err() != nil || fatalAtOpen(cerr) {
			cl.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("kafka: open: %w", ctx.Err())
			}
			return nil, cerr
		}
		if !errors.Is(cerr, ErrTopicNotFound) {
			log.Warn("kafka is not reachable yet; publishes will wait for it (if Kafka is up, check url and security_protocol)",
				"seeds", strings.Join(c.Seeds, ","), "security_protocol", string(c.SecurityProtocol), "err", err)
		}
	}
	log.Info("kafka event broker ready", "seeds", strings.Join(c.Seeds, ","), "topic", c.Topic,
		"security_protocol", string(c.SecurityProtocol), "partition_by_sender", c.PartitionBySender)
	return b, nil
}

// fatalAtOpen reports the errors that must stop Open: configuration
// mistakes retrying cannot fix (a Kafka error code that is not retriable,
// such as an invalid replication factor for create_topic, counts). A
// missing topic is not one: it can be created while parley runs.
func fatalAtOpen(err error) bool {
	var ke *kerr.Error
	if errors.Is(err, ErrTopicNotFound) {
		return false
	}
	return errors.Is(err, ErrAuthentication) ||
		errors.Is(err, broker.ErrPermanent) || errors.Is(err, errTLS) ||
		errors.As(err, &ke) && !ke.Retriable
}

// clientOptions turns the configuration into franz-go options: the
// connection's, then the producer's.
func (c Config) clientOptions(log *slog.Logger) ([]kgo.Opt, error) {
	opts, err := c.ConnectionOptions(log)
	if err != nil {
		return nil, err
	}
	return append(opts,
		kgo.DefaultProduceTopic(c.Topic),
		// librdkafka's producer lets brokers with auto.create.topics.enable
		// create a missing topic; so does parley.
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent: franz-go's default
		kgo.ProducerLinger(c.Linger),
		// Above max_buffered_records, which Publish enforces itself: the
		// client must never block a Produce call.
		kgo.MaxBufferedRecords(c.MaxBufferedRecords+1024),
		kgo.ProducerBatchMaxBytes(int32(c.MaxMessageBytes)),
		kgo.ProducerBatchCompression(c.CompressionCodec()),
		kgo.RecordPartitioner(partitioner(c.Partitioner)),
		kgo.UnknownTopicRetries(unknownTopicRetries),
		// Refresh metadata sooner after errors than franz-go's 5s, so that
		// a moved leader (a broker restart) or a missing topic is noticed
		// in about a second; metadata is only reloaded on errors and every
		// few minutes otherwise.
		kgo.MetadataMinAge(metadataMinAge),
	), nil
}

// CompressionCodec returns the franz-go codec of the compression key (none
// by default, as Rasa's librdkafka producer; franz-go's own default would be
// snappy).
func (c Config) CompressionCodec() kgo.CompressionCodec {
	switch c.Compression {
	case CompressionGzip:
		return kgo.GzipCompression()
	case CompressionSnappy:
		return kgo.SnappyCompression()
	case CompressionLZ4:
		return kgo.Lz4Compression()
	case CompressionZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func (c Config) saslMechanism() sasl.Mechanism {
	if !c.SecurityProtocol.SASL() {
		return nil
	}
	switch c.SASLMechanism {
	case MechanismScramSHA256:
		return scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha256Mechanism()
	case MechanismScramSHA512:
		return scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha512Mechanism()
	case MechanismOAuthBearer:
		return oauth.Auth{Token: c.OAuthToken}.AsMechanism()
	}
	return plain.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsMechanism()
}

// Config returns the broker's configuration, defaults applied.
func (b *Broker) Config() Config { return b.cfg }

// Client returns the franz-go client, for tests and tools that read the
// same cluster. Closing it closes the broker's producer.
func (b *Broker) Client() *kgo.Client { return b.cl }

// Publish produces one record per event and returns when Kafka has
// acknowledged all of them (acks=all), or with the first error. Records of
// one call for one partition, and so of one sender with
// partition_by_sender, keep their order. When ctx ends first Publish
// returns its error at once; records already handed to the client may
// still be delivered (at-least-once: the parley-event-id header lets
// consumers drop duplicates).
func (b *Broker) Publish(ctx context.Context, evs ...event.Event) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.exit()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	recs, err := b.rb.build(evs)
	if err != nil {
		return err
	}
	// A call larger than the buffer goes in pieces, each acknowledged
	// before the next is produced, which keeps the order.
	for len(recs) > 0 {
		n := min(len(recs), b.cfg.MaxBufferedRecords)
		if err := b.produce(ctx, recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// produce hands recs to the client and waits for their acknowledgement or
// for ctx. The records carry no deadline of their own: the client fails
// every record of a partition's batch when the first one's context ends,
// and that batch holds other callers' records too.
func (b *Broker) produce(ctx context.Context, recs []kgo.Record) error {
	n := int64(len(recs))
	if err := b.room.Acquire(ctx, n); err != nil {
		return err
	}
	w := &waiter{room: b.room, n: n, done: make(chan struct{})}
	w.remaining.Store(n)
	promise := w.promise
	for i := range recs {
		b.cl.Produce(context.Background(), &recs[i], promise)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.err == nil {
		b.noteTopic(nil)
		return nil
	}
	err := b.classify(w.err)
	b.noteTopic(err)
	if errors.Is(err, ErrTopicNotFound) && b.cfg.CreateTopic {
		// The topic went away after Open: create it again for the retry.
		if cerr := b.createTopic(ctx); cerr != nil {
			b.log.Warn("could not create the missing topic", "topic", b.cfg.Topic, "err", cerr)
		}
	}
	return err
}

// waiter collects the acknowledgements of one produce call. franz-go
// calls promises one at a time, in order per partition.
type waiter struct {
	room      *semaphore.Weighted
	n         int64 // records, released to room when all are done
	remaining atomic.Int64
	once      sync.Once
	err       error // the first failure, set before done is closed
	done      chan struct{}
}

func (w *waiter) promise(_ *kgo.Record, err error) {
	if err != nil {
		w.once.Do(func() { w.err = err; close(w.done) })
	}
	if w.remaining.Add(-1) == 0 {
		w.room.Release(w.n)
		w.once.Do(func() { close(w.done) })
	}
}

func (b *Broker) enter() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return broker.ErrClosed
	}
	b.inflight++
	return nil
}

func (b *Broker) exit() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight--
	if b.inflight == 0 && b.drained != nil {
		close(b.drained)
		b.drained = nil
	}
}

// Ping checks that the brokers answer and the topic exists, for /ready.
func (b *Broker) Ping(ctx context.Context) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return broker.ErrClosed
	}
	if err := b.pingTopic(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("kafka: no answer from %s: %w", strings.Join(b.cfg.Seeds, ","), err)
		}
		err = b.classify(err)
		b.noteTopic(err)
		return err
	}
	b.noteTopic(nil)
	return nil
}

// Close waits for the Publish calls in flight, flushes what the client
// buffered (also for callers that stopped waiting) and closes the client.
// When ctx ends first, the records still buffered fail and Close returns
// ctx's error. Close is idempotent.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.close(ctx) })
	return b.closeErr
}

func (b *Broker) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	var drained chan struct{}
	if b.inflight > 0 {
		b.drained = make(chan struct{})
		drained = b.drained
	}
	b.mu.Unlock()
	defer b.cl.Close() // fails what is still buffered
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			return fmt.Errorf("kafka: close: publishes still in flight: %w", ctx.Err())
		}
	}
	if err := b.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: close: flush: %w", err)
	}
	return nil
}
