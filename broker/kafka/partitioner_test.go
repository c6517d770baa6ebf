package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The expected partitions were computed outside Go: Python's zlib.crc32
// (the IEEE CRC-32 librdkafka's rd_crc32 computes) modulo the partition
// count, as librdkafka's consistent_random partitioner does, and the
// murmur2 column with a separate Python port of Kafka's Utils.murmur2.
// "123456789" is CRC-32's check string: 0xCBF43926 = 3421780262, and
// 3421780262 = 285148355*12 + 2, so partition 2 of 12 by hand.
func TestConsistentRandomMatchesLibrdkafka(t *testing.T) {
	cases := []struct {
		key  string
		n    int
		want int
	}{
		{"123456789", 12, 2},
		{"123456789", 3, 2},
		{"123456789", 1, 0},
		{"default", 3, 1},
		{"default", 10, 9},
		{"default", 12, 7},
		{"user-42", 10, 5},
		{"user-42", 12, 7},
		{"c7b9e2a0-5d1f-4c3e-9a8b-123456789abc", 3, 2},
		{"c7b9e2a0-5d1f-4c3e-9a8b-123456789abc", 12, 8},
		{"a", 10, 7},
		{"Grüße", 12, 9}, // UTF-8 bytes, as Rasa encodes the key
	}
	for _, c := range cases {
		if got := ConsistentRandomPartition([]byte(c.key), c.n); got != c.want {
			t.Errorf("ConsistentRandomPartition(%q, %d) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

func TestConsistentRandomEmptyKeyIsRandom(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		p := ConsistentRandomPartition([]byte{}, 4)
		if p < 0 || p >= 4 {
			t.Fatalf("partition %d out of range", p)
		}
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Fatalf("empty keys all went to %v; librdkafka spreads them randomly", seen)
	}
}

// TestPartitionerOption runs the partitioner the client is configured
// with, for both settings, on keyed records.
func TestPartitionerOption(t *testing.T) {
	cases := []struct {
		name string
		key  string
		n    int
		want int
	}{
		{PartitionerConsistentRandom, "default", 12, 7},
		{PartitionerConsistentRandom, "user-42", 12, 7},
		{PartitionerMurmur2, "default", 12, 7},
		{PartitionerMurmur2, "user-42", 12, 4},
		{PartitionerMurmur2, "c7b9e2a0-5d1f-4c3e-9a8b-123456789abc", 10, 8},
		{PartitionerMurmur2, "123456789", 10, 6},
	}
	for _, c := range cases {
		tp := partitioner(c.name).ForTopic("t")
		r := &kgo.Record{Key: []byte(c.key)}
		if !tp.RequiresConsistency(r) {
			t.Errorf("%s: keyed records must always hash to the same partition", c.name)
		}
		bp, ok := tp.(kgo.TopicBackupPartitioner)
		if !ok {
			t.Fatalf("%s: not a backup partitioner", c.name)
		}
		got := bp.PartitionByBackup(r, c.n, &noBackup{rem: c.n})
		if got != c.want {
			t.Errorf("%s partitioner: key %q over %d partitions = %d, want %d", c.name, c.key, c.n, got, c.want)
		}
	}
}

// noBackup reports every partition empty.
type noBackup struct{ i, rem int }

func (b *noBackup) Rem() int { return b.rem }
func (b *noBackup) Next() (int, int64) {
	b.i, b.rem = b.i+1, b.rem-1
	return b.i - 1, 0
}
