package rabbitmq

import (
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A call is one Publish call waiting for RabbitMQ to confirm its messages.
type call struct {
	remaining atomic.Int64
	done      chan struct{}
	once      sync.Once
	err       error // set before done is closed
}

func newCall(n int) *call {
	c := &call{done: make(chan struct{})}
	c.remaining.Store(int64(n))
	return c
}

// ack counts one confirmed message; the last one completes the call.
func (c *call) ack() {
	if c.remaining.Add(-1) == 0 {
		c.finish(nil)
	}
}

// finish completes the call with err unless it is already complete.
func (c *call) finish(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
	})
}

// finished reports whether nobody waits for the call any more: it was
// confirmed, failed, or its caller gave up.
func (c *call) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// A record is one message of a call. It is in exactly one place at a time:
// being sent by its caller, in the broker's backlog, or in the in-flight
// queue of the session that sent it, so that it is confirmed or republished
// exactly once per connection.
type record struct {
	seq      uint64 // publish order across calls, kept when republished
	tag      uint64 // delivery tag on the session that sent it last
	returned bool   // RabbitMQ returned it as unroutable (basic.return)
	msg      amqp.Publishing
	call     *call
}

// fifo is a queue of records in delivery-tag order.
type fifo struct {
	buf  []*record
	head int
}

func (q *fifo) push(r *record) {
	if q.head > 0 && q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head > 1024 && q.head > len(q.buf)/2 {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, r)
}

func (q *fifo) peek() *record {
	if q.head == len(q.buf) {
		return nil
	}
	return q.buf[q.head]
}

func (q *fifo) pop() *record {
	r := q.peek()
	if r != nil {
		q.buf[q.head] = nil
		q.head++
	}
	return r
}

// all returns the queued records in order.
func (q *fifo) all() []*record { return q.buf[q.head:] }

// take empties the queue and returns what it held.
func (q *fifo) take() []*record {
	out := append([]*record(nil), q.buf[q.head:]...)
	clear(q.buf)
	q.buf, q.head = q.buf[:0], 0
	return out
}
