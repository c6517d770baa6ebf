package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Source is the log the consumer API reads: Kafka topics (package
// consumer/kafkasrc) or the SQL broker's events table (package
// consumer/sqlsrc). A Source is shared by every REST consumer instance and
// must be safe for concurrent use.
type Source interface {
	// DefaultTopic is the topic described by GET /partitions when the
	// request names none and no token implies one.
	DefaultTopic() string
	// Partitions lists the partition numbers of topic, ascending, or
	// returns ErrTopicNotFound.
	Partitions(ctx context.Context, topic string) ([]int32, error)
	// Offsets returns the first offset still held in a partition and the
	// offset the next record will get (Kafka's log start offset and high
	// watermark). It returns ErrTopicNotFound or ErrPartitionNotFound.
	Offsets(ctx context.Context, topic string, partition int32) (PartitionOffsets, error)
	// Topics lists the topics the source holds, sorted (Confluent's
	// GET /topics and topic_pattern subscriptions).
	Topics(ctx context.Context) ([]string, error)
	// NewConsumer makes the reading side of one REST consumer instance.
	// It neither joins the group nor reads until Subscribe or Assign.
	NewConsumer(ctx context.Context, opts ConsumerOptions) (Consumer, error)
}

// Notifier is implemented by sources that can be told new records were
// just written, so that waiting reads return at once instead of at their
// next poll. The SQL source implements it; the server calls it after the
// SQL broker commits.
type Notifier interface {
	Notify()
}

// GroupOwners is implemented by sources that record, beside a consumer
// group's offsets, which API client owns the group, so that one client
// cannot read or move another's offsets (and the record survives a
// restart). Sources without it have their owners kept in memory.
type GroupOwners interface {
	// ClaimGroup returns the owner of group, recording client as the
	// owner when the group has none.
	ClaimGroup(ctx context.Context, group, client string) (owner string, err error)
}

// Consumer is one REST consumer instance's view of the source: Kafka's
// KafkaConsumer, reduced to what the REST API needs. The engine serializes
// Fetch, Seek, Subscribe, Unsubscribe and Assign; Commit, Committed and
// Assignment may run concurrently with them.
//
// Offsets follow Kafka: a committed offset is the next offset to read, not
// the last one read (the HTTP API adds the one, as Confluent's does).
type Consumer interface {
	// Subscribe joins the group for topics (replacing an earlier
	// subscription); partitions are assigned by the group and may change
	// at any time, reported through ConsumerOptions.OnRevoked.
	Subscribe(ctx context.Context, topics []string) error
	// Unsubscribe leaves the group and drops the subscription.
	Unsubscribe(ctx context.Context) error
	// Assign reads exactly these partitions, outside group management,
	// starting at the group's committed offsets (or the reset policy).
	// An empty list unassigns.
	Assign(ctx context.Context, partitions []TopicPartition) error
	// Assignment returns the partitions currently read.
	Assignment(ctx context.Context) ([]TopicPartition, error)
	// Fetch returns up to max records, waiting until at least one is
	// available or ctx ends; a done ctx returns what is available at once
	// (possibly nothing) and no error. Records of one partition come in
	// offset order.
	Fetch(ctx context.Context, max int) ([]Record, error)
	// Seek sets the next offset read from each partition. Offset may be
	// OffsetBeginning or OffsetEnd. A partition not assigned to this
	// consumer returns ErrNotAssigned.
	Seek(ctx context.Context, offsets []TopicPartitionOffset) error
	// Commit stores the group's next offset for each partition.
	Commit(ctx context.Context, offsets []TopicPartitionOffset) error
	// Committed returns the group's committed offsets for partitions; a
	// partition without a commit is left out.
	Committed(ctx context.Context, partitions []TopicPartition) ([]TopicPartitionOffset, error)
	// Close leaves the group and releases the consumer. It does not
	// commit: the engine commits first when auto commit is on.
	Close(ctx context.Context) error
}

// Special offsets for Seek.
const (
	// OffsetBeginning seeks to the first offset held (Kafka's
	// seekToBeginning).
	OffsetBeginning int64 = -2
	// OffsetEnd seeks past the last record (Kafka's seekToEnd).
	OffsetEnd int64 = -1
)

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// Group is the consumer group: offsets are stored per group, and the
	// members of a group share its topics' partitions.
	Group string
	// Name identifies the member within its group.
	Name string
	// Owner is the API client that created the instance ("" when the
	// API is open); sources that record group owners with commits use it.
	Owner string
	// Reset is where reading starts in a partition that has no committed
	// offset for the group (auto.offset.reset; default latest, as Kafka).
	Reset OffsetReset
	// OnRevoked, if set, is called when the group takes partitions away
	// from this consumer (a rebalance, or leaving), before another member
	// may read them, so that the engine can commit what it delivered.
	OnRevoked func(ctx context.Context, partitions []TopicPartition)
	// OnReset, if set, is told of every position the consumer moved
	// because it was out of range (Kafka's OffsetOutOfRange handled by
	// auto.offset.reset), so that the reset is never silent.
	OnReset func(ResetEvent)
}

// ResetEvent is a position moved by auto.offset.reset because it was
// outside the partition's [beginning, end].
type ResetEvent struct {
	Topic     string
	Partition int32
	// From is the offset that was out of range (-1: the group had no
	// committed offset, which is not an error unless the policy is none).
	From int64
	// To is where reading continues.
	To     int64
	Policy OffsetReset
	// Range is the partition's bounds when the reset happened.
	Range PartitionOffsets
}

// OffsetReset is Kafka's auto.offset.reset.
type OffsetReset int

// The reset policies.
const (
	ResetLatest OffsetReset = iota
	ResetEarliest
	// ResetNone makes a read of an out-of-range position (or of a group
	// with no committed offset) fail with ErrOffsetOutOfRange, as Kafka's
	// auto.offset.reset=none, until the client seeks.
	ResetNone
)

func (r OffsetReset) String() string {
	switch r {
	case ResetEarliest:
		return "earliest"
	case ResetNone:
		return "none"
	}
	return "latest"
}

// Apply returns where a position out of b continues under policy r, and
// false for ResetNone.
func (r OffsetReset) Apply(b PartitionOffsets) (int64, bool) {
	switch r {
	case ResetEarliest:
		return b.Beginning, true
	case ResetLatest:
		return b.End, true
	}
	return 0, false
}

// InRange reports whether off is a position Kafka would fetch from
// without OffsetOutOfRange: between the first offset held and the end.
func (b PartitionOffsets) InRange(off int64) bool {
	return off >= b.Beginning && off <= b.End
}

// OutOfRangeError is the error of a read under auto.offset.reset=none of
// a position outside the partition (ErrOffsetOutOfRange).
func OutOfRangeError(topic string, partition int32, off int64, b PartitionOffsets) error {
	if off < 0 {
		return fmt.Errorf("%s[%d] has no committed offset and auto.offset.reset is none; seek to a position in [%d, %d]: %w", topic, partition, b.Beginning, b.End, ErrOffsetOutOfRange)
	}
	return fmt.Errorf("%s[%d]: offset %d is outside [%d, %d] and auto.offset.reset is none; seek to a position in the range: %w", topic, partition, off, b.Beginning, b.End, ErrOffsetOutOfRange)
}

// TopicPartition names a partition. In requests the partition may be a
// JSON number or a numeric string (Nuance's Mix client sends strings).
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// TopicPartitionOffset is an offset in a partition. In requests the
// partition and the offset may be JSON numbers or numeric strings.
type TopicPartitionOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Metadata is the free-form string Kafka stores with a commit.
	Metadata string `json:"metadata,omitempty"`
}

// TP returns the partition of o.
func (o TopicPartitionOffset) TP() TopicPartition {
	return TopicPartition{Topic: o.Topic, Partition: o.Partition}
}

// PartitionOffsets are the bounds of a partition.
type PartitionOffsets struct {
	// Beginning is the first offset held.
	Beginning int64 `json:"beginning_offset"`
	// End is the offset the next record will get.
	End int64 `json:"end_offset"`
}

// Record is one record read from a source.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	// Key is nil when the record has none.
	Key []byte
	// Value holds the event's JSON.
	Value []byte
	// Timestamp is zero when unknown.
	Timestamp time.Time
	Headers   []Header
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// size is the approximate size of r counted against max_bytes, as
// Confluent counts it: key and value bytes.
func (r *Record) size() int64 { return int64(len(r.Key) + len(r.Value)) }

// Sentinel errors that sources return and the HTTP layer maps to error
// codes.
var (
	// ErrTopicNotFound: the topic does not exist (40401).
	ErrTopicNotFound = errors.New("topic not found")
	// ErrPartitionNotFound: the partition does not exist (40402).
	ErrPartitionNotFound = errors.New("partition not found")
	// ErrNotAssigned: the partition is not assigned to this consumer
	// (40903, as Kafka's IllegalStateException).
	ErrNotAssigned = errors.New("partition is not assigned to this consumer")
	// ErrRebalanced: a commit failed because the group rebalanced
	// (40903); the records will be read again by their new owner.
	ErrRebalanced = errors.New("the group rebalanced")
	// ErrConsumerNotFound: no consumer instance has this group and name
	// (40403).
	ErrConsumerNotFound = errors.New("consumer instance not found")
	// ErrConsumerExpired: the instance existed and was closed after being
	// idle for the configured time (40404).
	ErrConsumerExpired = errors.New("consumer instance expired")
	// ErrConsumerExists: an instance with this group and name exists
	// (40902).
	ErrConsumerExists = errors.New("consumer instance already exists")
	// ErrOffsetOutOfRange: a read under auto.offset.reset=none found a
	// position outside its partition (40905).
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrClosed: the engine is closed.
	ErrClosed = errors.New("consumer API is closed")
)
