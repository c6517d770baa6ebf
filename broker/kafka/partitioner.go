package kafka

import (
	"hash/crc32"
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kgo"
)

// uniformBytes is how much a partition of unkeyed records takes before the
// partitioner moves on (franz-go's default, like Kafka's
// partitioner.adaptive.partitioning with batch.size 64KiB): whole batches
// for throughput, spread over the partitions.
const uniformBytes = 64 << 10

// ConsistentRandomPartition returns the partition librdkafka's default
// partitioner, consistent_random, gives key among n partitions: CRC-32
// (IEEE) of the key modulo n, computed unsigned. Rasa publishes through
// librdkafka, so a sender_id key lands on the same partition with parley as
// with Rasa. An empty key gets a random partition, as librdkafka does.
func ConsistentRandomPartition(key []byte, n int) int {
	if len(key) == 0 {
		return rand.IntN(n)
	}
	return int(crc32.ChecksumIEEE(key) % uint32(n))
}

// partitioner returns the kgo partitioner named by the partitioner key.
// Unkeyed records are spread in whole batches either way; keyed records
// are hashed.
func partitioner(name string) kgo.Partitioner {
	if name == PartitionerMurmur2 {
		return kgo.UniformBytesPartitioner(uniformBytes, true, true, nil) // nil: Kafka's murmur2
	}
	return kgo.UniformBytesPartitioner(uniformBytes, true, true, ConsistentRandomPartition)
}
