// Package groupcommit batches concurrent publishes into one write, the way
// databases group commits: while one write (a transaction, an fsync) is in
// progress, newly submitted events queue up and all go in the next write.
// Callers get the write's result, so each still returns only once its
// events are durable, at the cost of one write per batch instead of one per
// call.
package groupcommit

import (
	"context"
	"fmt"
	"sync"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// WriteFunc writes a batch: the events of several Submit calls, in order.
type WriteFunc func(batch [][]event.Event) error

// Committer owns the writer goroutine.
type Committer struct {
	write    WriteFunc
	maxBatch int
	reqs     chan *request
	mu       sync.RWMutex // guards closed against sends on reqs
	closed   bool
	stopped  chan struct{}
}

type request struct {
	evs  []event.Event
	done chan error
}

// New starts a committer that puts up to maxBatch events in one write.
func New(maxBatch int, write WriteFunc) *Committer { return NewParallel(1, maxBatch, write) }

// NewParallel starts a committer with several writers, for destinations
// that commit concurrent transactions in parallel (PostgreSQL). Each
// Submit's events stay together and in order, and a caller's successive
// Submits are ordered since each waits for the previous; Submits running
// at the same time may commit in any order, as they may with any broker.
func NewParallel(writers, maxBatch int, write WriteFunc) *Committer {
	if maxBatch < 1 {
		maxBatch = 1
	}
	writers = max(writers, 1)
	c := &Committer{write: write, maxBatch: maxBatch, reqs: make(chan *request, 1024), stopped: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(writers)
	for range writers {
		go func() {
			defer wg.Done()
			c.run()
		}()
	}
	go func() {
		wg.Wait()
		close(c.stopped)
	}()
	return c
}

// Submit queues evs for the next write and waits for its result. If ctx
// ends first it returns ctx's error; the events may still be written. After
// Close it returns broker.ErrClosed.
func (c *Committer) Submit(ctx context.Context, evs []event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return broker.ErrClosed
	}
	if len(evs) == 0 {
		c.mu.RUnlock()
		return nil
	}
	r := &request{evs: evs, done: make(chan error, 1)}
	c.reqs <- r
	c.mu.RUnlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Committer) run() {
	var reqs []*request
	var batch [][]event.Event
	for r := range c.reqs {
		reqs, batch = append(reqs[:0], r), append(batch[:0], r.evs)
		n := len(r.evs)
	fill:
		for n < c.maxBatch {
			select {
			case more, ok := <-c.reqs:
				if !ok {
					break fill
				}
				reqs, batch = append(reqs, more), append(batch, more.evs)
				n += len(more.evs)
			default:
				break fill
			}
		}
		err := c.write(batch)
		for _, r := range reqs {
			r.done <- err
		}
	}
}

// Close stops accepting events and waits until those already submitted
// are written.
func (c *Committer) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	select {
	case <-c.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for queued writes: %w", ctx.Err())
	}
}
