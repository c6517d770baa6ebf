package broker

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/event"
)

// Positioned is implemented by brokers that can write a numbered stream
// exactly once: each write records, in the same transaction as the events,
// the position the stream has reached, so that a writer that crashed, lost
// its connection or saw a commit with an unknown outcome asks the
// destination where to resume instead of writing again what may be there.
//
// The spool's delivery worker uses it when its broker implements it; the
// positions are the spool's sequence numbers (increasing, not necessarily
// contiguous).
type Positioned interface {
	Broker
	// OpenStream opens the stream named id: a name unique to one writer
	// (parley uses the spool's identity and the broker's name), so that
	// several writers can share a destination. It may do no I/O; a stream
	// opened twice is fenced: the older handle's writes fail.
	OpenStream(ctx context.Context, id string) (Stream, error)
}

// Stream is one writer's numbered stream at a Positioned broker. It is
// used by one goroutine at a time.
type Stream interface {
	// Position returns the position recorded by the last committed
	// PublishAt, read from the destination (0 when nothing was ever
	// recorded). After a PublishAt with an unknown outcome it waits until
	// that outcome is decided, so the answer is final.
	Position(ctx context.Context) (uint64, error)
	// PublishAt publishes evs and records next as the stream's position,
	// atomically, provided the recorded position is still prev; if it is
	// not, nothing is written and the error is ErrPositionMoved. On any
	// other error the events may or may not have been committed: call
	// Position to learn which before writing them again.
	PublishAt(ctx context.Context, prev, next uint64, evs ...event.Event) error
	// Close releases the stream; it does not close the broker.
	Close(ctx context.Context) error
}

// BatchHinter is implemented by streams whose cost is mostly per write
// (a Kafka transaction): the spool hands them batches of up to MinBatch
// events when that many are waiting, even if its max_batch is lower.
type BatchHinter interface {
	MinBatch() int
}

// ErrPositionMoved is returned by Stream.PublishAt when the destination's
// position is not the one the writer expected: an earlier write it thought
// failed was committed, or another writer uses the same stream.
var ErrPositionMoved = errors.New("stream position is not the expected one")
