package kafkasrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/consumer"
)

// Options configure New.
type Options struct {
	// ClientOpts connect to the cluster: seeds, TLS, SASL, client ID (the
	// Kafka event broker's configuration turned into options). Every
	// consumer instance's client starts from them.
	ClientOpts []kgo.Opt
	// Topic is the default topic (default rasa_core_events, Rasa's).
	Topic string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Source reads Kafka topics. Each REST consumer instance gets its own
// franz-go client, so that group membership, rebalancing and commits are
// Kafka's own; metadata and offset lookups share one admin client.
type Source struct {
	opts  Options
	log   *slog.Logger
	admin *kgo.Client
	adm   *kadm.Client
}

var _ consumer.Source = (*Source)(nil)

// New connects the admin client and checks the cluster answers.
func New(ctx context.Context, opts Options) (*Source, error) {
	if opts.Topic == "" {
		opts.Topic = consumer.DefaultTopic
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// Read committed, in every client made from these options: the records
	// of transactions a crashed or fenced exactly-once parley aborted must
	// never reach a consumer.
	opts.ClientOpts = append(slices.Clip(opts.ClientOpts), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	cl, err := kgo.NewClient(opts.ClientOpts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer source: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka consumer source: %w", err)
	}
	return &Source{opts: opts, log: log, admin: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the admin client. Close the Handler (and so every consumer
// instance) first.
func (s *Source) Close(ctx context.Context) error {
	s.admin.Close()
	return nil
}

// DefaultTopic returns Options.Topic.
func (s *Source) DefaultTopic() string { return s.opts.Topic }

// Partitions lists the topic's partitions.
func (s *Source) Partitions(ctx context.Context, topic string) ([]int32, error) {
	tds, err := s.adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: list topic %q: %w", topic, err)
	}
	td, ok := tds[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("%q: %w", topic, consumer.ErrTopicNotFound)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("kafka: topic %q: %w", topic, td.Err)
	}
	ps := make([]int32, 0, len(td.Partitions))
	for p := range td.Partitions {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps, nil
}

// Offsets returns the log start offset and the high watermark.
func (s *Source) Offsets(ctx context.Context, topic string, partition int32) (consumer.PartitionOffsets, error) {
	start, err := s.listed(ctx, s.adm.ListStartOffsets, topic, partition)
	if err != nil {
		return consumer.PartitionOffsets{}, err
	}
	end, err := s.listed(ctx, s.adm.ListEndOffsets, topic, partition)
	if err != nil {
		return consumer.PartitionOffsets{}, err
	}
	return consumer.PartitionOffsets{Beginning: start, End: end}, nil
}

func (s *Source) listed(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string, partition int32) (int64, error) {
	l, err := list(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: list offsets of %q: %w", topic, err)
	}
	o, ok := l.Lookup(topic, partition)
	switch {
	case !ok && len(l[topic]) == 0:
		return 0, fmt.Errorf("%q: %w", topic, consumer.ErrTopicNotFound)
	case !ok:
		return 0, fmt.Errorf("%s[%d]: %w", topic, partition, consumer.ErrPartitionNotFound)
	case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
		return 0, fmt.Errorf("%q: %w", topic, consumer.ErrTopicNotFound)
	case o.Err != nil:
		return 0, fmt.Errorf("kafka: list offsets of %s[%d]: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}

// resolve turns OffsetBeginning and OffsetEnd into offsets.
func (s *Source) resolve(ctx context.Context, topic string, partition int32, off int64) (int64, error) {
	switch off {
	case consumer.OffsetBeginning:
		return s.listed(ctx, s.adm.ListStartOffsets, topic, partition)
	case consumer.OffsetEnd:
		return s.listed(ctx, s.adm.ListEndOffsets, topic, partition)
	}
	return off, nil
}

// NewConsumer makes a consumer; its client is created on Subscribe or
// Assign, which fix the group mode.
func (s *Source) NewConsumer(ctx context.Context, opts consumer.ConsumerOptions) (consumer.Consumer, error) {
	return &member{s: s, opts: opts, assigned: map[consumer.TopicPartition]bool{}, ready: map[consumer.TopicPartition]bool{}, pending: map[consumer.TopicPartition]int64{}}, nil
}
