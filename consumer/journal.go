package consumer

// journal remembers the order in which an instance delivered its last
// records, so that an SSE client reconnecting with Last-Event-ID gets
// exactly the records sent after that event, on every partition: those
// were written to the dropped connection but may never have arrived.
//
// It is a ring of the last journalSize deliveries (32 bytes each).
type journal struct {
	ents  []journalEntry
	start int // index of the oldest entry
	n     int
}

type journalEntry struct {
	topic     string
	partition int32
	offset    int64
}

const journalSize = 16384

func newJournal() *journal { return &journal{ents: make([]journalEntry, journalSize)} }

func (j *journal) add(topic string, partition int32, offset int64) {
	i := (j.start + j.n) % len(j.ents)
	j.ents[i] = journalEntry{topic, partition, offset}
	if j.n < len(j.ents) {
		j.n++
	} else {
		j.start = (j.start + 1) % len(j.ents)
	}
}

func (j *journal) at(k int) journalEntry { return j.ents[(j.start+k)%len(j.ents)] }

// rewind finds the last delivery of partition:offset (in any topic) and
// returns, for every partition delivered after it, the first offset
// delivered after it: where reading must resume so that nothing sent
// after the event is lost. It drops those entries (they will be delivered
// again). found is false when the event is not in the journal.
func (j *journal) rewind(partition int32, offset int64) (seeks []TopicPartitionOffset, found bool) {
	k := j.n - 1
	for ; k >= 0; k-- {
		if e := j.at(k); e.partition == partition && e.offset == offset {
			break
		}
	}
	if k < 0 {
		return nil, false
	}
	seen := map[TopicPartition]bool{}
	for i := k + 1; i < j.n; i++ {
		e := j.at(i)
		tp := TopicPartition{e.topic, e.partition}
		if !seen[tp] {
			seen[tp] = true
			seeks = append(seeks, TopicPartitionOffset{Topic: e.topic, Partition: e.partition, Offset: e.offset})
		}
	}
	j.n = k + 1
	return seeks, true
}
