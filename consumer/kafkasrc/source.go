package kafkasrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

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

	mu      sync.Mutex
	owners  map[string]string           // group -> client, claimed in this process
	members map[string]map[*member]bool // group -> its subscribed members in this process
}

var (
	_ consumer.Source      = (*Source)(nil)
	_ consumer.GroupOwners = (*Source)(nil)
)

// New connects the admin client and checks the cluster answers.
func New(ctx context.Context, opts Options) (*Source, error) {
	if opts.Topic == "" {
		opts.Topic = consumer.DefaultTopic
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cl, err := kgo.NewClient(opts.ClientOpts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer source: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka consumer source: %w", err)
	}
	return &Source{opts: opts, log: log, admin: cl, adm: kadm.NewClient(cl), owners: map[string]string{}, members: map[string]map[*member]bool{}}, nil
}

// Close closes the admin client. Close the Handler (and so every consumer
// instance) first.
func (s *Source) Close(ctx context.Context) error {
	s.admin.Close()
	return nil
}

// DefaultTopic returns Options.Topic.
func (s *Source) DefaultTopic() string { return s.opts.Topic }

// Topics lists the cluster's topics, internal ones left out.
func (s *Source) Topics(ctx context.Context) ([]string, error) {
	tds, err := s.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka: list topics: %w", err)
	}
	out := make([]string, 0, len(tds))
	for _, td := range tds {
		if td.Err == nil {
			out = append(out, td.Topic)
		}
	}
	slices.Sort(out)
	return out, nil
}

// bounds returns the start and end offsets of every partition of topics.
func (s *Source) bounds(ctx context.Context, topics ...string) (map[consumer.TopicPartition]consumer.PartitionOffsets, error) {
	start, err := s.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: list offsets: %w", err)
	}
	end, err := s.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: list offsets: %w", err)
	}
	out := map[consumer.TopicPartition]consumer.PartitionOffsets{}
	start.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[consumer.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = consumer.PartitionOffsets{Beginning: o.Offset}
		}
	})
	end.Each(func(o kadm.ListedOffset) {
		tp := consumer.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		if b, ok := out[tp]; ok && o.Err == nil {
			b.End = o.Offset
			out[tp] = b
		}
	})
	return out, nil
}

// setGroupMember records whether m is a subscribed member of its group.
func (s *Source) setGroupMember(m *member, in bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := m.opts.Group
	if in {
		if s.members[g] == nil {
			s.members[g] = map[*member]bool{}
		}
		s.members[g][m] = true
		return
	}
	delete(s.members[g], m)
	if len(s.members[g]) == 0 {
		delete(s.members, g)
	}
}

// groupClient returns the client of a subscribed member of group other
// than not, if this process has one.
func (s *Source) groupClient(group string, not *member) *kgo.Client {
	s.mu.Lock()
	var ms []*member
	for m := range s.members[group] {
		if m != not {
			ms = append(ms, m)
		}
	}
	s.mu.Unlock()
	for _, m := range ms {
		if cl, group := m.client(); cl != nil && group {
			return cl
		}
	}
	return nil
}

// ownerTag marks parley's commits with the group's owner, so that the
// record of who owns a group lives beside its offsets, in Kafka.
const ownerTag = "parley-owner:"

// tagMetadata prefixes a commit's metadata with the owner's tag.
func tagMetadata(owner, meta string) string {
	if owner == "" {
		return meta
	}
	return ownerTag + owner + "\n" + meta
}

// untagMetadata splits a commit's metadata into owner and the client's
// metadata.
func untagMetadata(meta string) (owner, rest string) {
	if !strings.HasPrefix(meta, ownerTag) {
		return "", meta
	}
	owner, rest, _ = strings.Cut(meta[len(ownerTag):], "\n")
	return owner, rest
}

// ClaimGroup implements consumer.GroupOwners: the owner is the client
// named in the group's committed offsets' metadata (parley tags every
// commit), else the first client to claim it in this process. A group
// nobody committed to is claimed again after a restart: it has no
// offsets to protect, and explicit consumer_api.clients[].groups lists
// bind it for good.
func (s *Source) ClaimGroup(ctx context.Context, group, client string) (string, error) {
	s.mu.Lock()
	owner, ok := s.owners[group]
	s.mu.Unlock()
	if ok {
		return owner, nil
	}
	resp, err := s.adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return "", fmt.Errorf("kafka: fetch committed offsets of group %q: %w", group, err)
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && owner == "" {
			owner, _ = untagMetadata(o.Metadata)
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.owners[group]; ok {
		return prev, nil
	}
	if owner == "" {
		owner = client
	}
	s.owners[group] = owner
	return owner, nil
}

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
	return &member{s: s, opts: opts, assigned: map[consumer.TopicPartition]bool{}, ready: map[consumer.TopicPartition]bool{}, pending: map[consumer.TopicPartition]int64{}, invalid: map[consumer.TopicPartition]error{}}, nil
}
