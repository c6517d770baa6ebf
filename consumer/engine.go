package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// instanceKey names a consumer instance: Mix's consumer-group and
// consumer-name headers, Confluent's path segments.
type instanceKey struct{ group, name string }

// tombstoneTTL and maxTombstones bound the memory of expired instances.
const (
	tombstoneTTL  = time.Hour
	maxTombstones = 10000
)

// engine holds the consumer instances of one Handler.
type engine struct {
	src Source
	cfg Config
	log *slog.Logger
	m   *metrics

	mu         sync.Mutex
	closed     bool
	instances  map[instanceKey]*instance
	tombstones map[instanceKey]time.Time // expired instances, when: a later call can say so instead of a bare "not found"

	stop context.CancelFunc
	wg   sync.WaitGroup // the reaper and closing instances
}

func newEngine(src Source, cfg Config, log *slog.Logger, m *metrics) *engine {
	ctx, cancel := context.WithCancel(context.Background())
	e := &engine{
		src:        src,
		cfg:        cfg,
		log:        log,
		m:          m,
		instances:  map[instanceKey]*instance{},
		tombstones: map[instanceKey]time.Time{},
		stop:       cancel,
	}
	e.wg.Add(1)
	go e.reap(ctx)
	return e
}

// reapInterval is how often idle instances are looked for: often enough
// that an instance lives at most a little over its idle timeout.
func (e *engine) reapInterval() time.Duration {
	return min(max(e.cfg.IdleTimeout/4, 10*time.Millisecond), 10*time.Second)
}

func (e *engine) reap(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(e.reapInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.expireIdle(now)
			e.autoCommitAll(ctx, now)
		}
	}
}

// expireIdle closes the instances idle for longer than the idle timeout.
func (e *engine) expireIdle(now time.Time) {
	e.mu.Lock()
	var expired []*instance
	for k, in := range e.instances {
		if in.idleSince(now) >= e.cfg.IdleTimeout {
			delete(e.instances, k)
			e.bury(k, now)
			expired = append(expired, in)
		}
	}
	for k, at := range e.tombstones {
		if now.Sub(at) > tombstoneTTL {
			delete(e.tombstones, k)
		}
	}
	e.m.consumers.Set(float64(len(e.instances)))
	e.mu.Unlock()
	for _, in := range expired {
		e.log.Info("consumer instance expired", "group", in.key.group, "name", in.key.name, "idle_timeout", e.cfg.IdleTimeout)
		e.closeInBackground(in)
	}
}

// autoCommitAll commits for idle auto-committing instances, so that
// offsets delivered just before a client went quiet are not left
// uncommitted until the instance expires.
func (e *engine) autoCommitAll(ctx context.Context, now time.Time) {
	e.mu.Lock()
	ins := make([]*instance, 0, len(e.instances))
	for _, in := range e.instances {
		if in.settings.autoCommit {
			ins = append(ins, in)
		}
	}
	e.mu.Unlock()
	for _, in := range ins {
		in.maybeAutoCommit(ctx, now, false)
	}
}

// bury records an expired instance; e.mu is held.
func (e *engine) bury(k instanceKey, now time.Time) {
	if len(e.tombstones) >= maxTombstones {
		var oldest instanceKey
		var oldestAt time.Time
		for k, at := range e.tombstones {
			if oldestAt.IsZero() || at.Before(oldestAt) {
				oldest, oldestAt = k, at
			}
		}
		delete(e.tombstones, oldest)
	}
	e.tombstones[k] = now
}

func (e *engine) closeInBackground(in *instance) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := in.close(ctx); err != nil {
			e.log.Warn("closing consumer instance", "group", in.key.group, "name", in.key.name, "err", err)
		}
	}()
}

// create makes a new instance.
func (e *engine) create(ctx context.Context, k instanceKey, owner string, s settings) (*instance, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := e.instances[k]; ok {
		e.mu.Unlock()
		return nil, ErrConsumerExists
	}
	// Reserve the name while the source makes the consumer.
	in := newInstance(e, k, owner, s)
	e.instances[k] = in
	delete(e.tombstones, k)
	e.mu.Unlock()

	c, err := e.src.NewConsumer(ctx, ConsumerOptions{
		Group:     k.group,
		Name:      k.name,
		Owner:     owner,
		Reset:     s.reset,
		OnRevoked: in.onRevoked,
		OnReset:   in.onReset,
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		delete(e.instances, k)
		in.mu.Lock()
		in.closed = true
		in.mu.Unlock()
		close(in.ready)
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	in.c = c
	close(in.ready)
	e.m.consumers.Set(float64(len(e.instances)))
	return in, nil
}

// get returns the instance k for a request by owner and marks it in use;
// the caller calls release when the request ends.
func (e *engine) get(k instanceKey, owner string) (*instance, error) {
	now := time.Now()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	in, ok := e.instances[k]
	if ok && in.idleSince(now) >= e.cfg.IdleTimeout {
		// Idle past its time and the reaper has not run yet.
		delete(e.instances, k)
		e.bury(k, now)
		e.m.consumers.Set(float64(len(e.instances)))
		e.mu.Unlock()
		e.closeInBackground(in)
		return nil, e.expiredError()
	}
	if !ok {
		_, dead := e.tombstones[k]
		e.mu.Unlock()
		if dead {
			return nil, e.expiredError()
		}
		return nil, ErrConsumerNotFound
	}
	e.mu.Unlock()
	<-in.ready
	if in.owner != owner {
		return nil, apiErr(http.StatusForbidden, CodeForbidden, "Consumer instance belongs to another client.")
	}
	if !in.acquire(now) {
		return nil, ErrConsumerNotFound // closed meanwhile
	}
	return in, nil
}

func (e *engine) expiredError() error {
	return &Error{
		Status:  http.StatusNotFound,
		Code:    CodeConsumerExpired,
		Message: fmt.Sprintf("Consumer instance expired after %s of inactivity; create it again (committed offsets are kept).", e.cfg.IdleTimeout),
		err:     ErrConsumerExpired,
	}
}

// remove deletes an instance (DELETE /consumers).
func (e *engine) remove(ctx context.Context, in *instance) error {
	e.mu.Lock()
	if e.instances[in.key] == in {
		delete(e.instances, in.key)
	}
	e.m.consumers.Set(float64(len(e.instances)))
	e.mu.Unlock()
	return in.close(ctx)
}

// close closes every instance (committing for auto-committing ones) and
// stops the reaper.
func (e *engine) close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ins := make([]*instance, 0, len(e.instances))
	for _, in := range e.instances {
		ins = append(ins, in)
	}
	clear(e.instances)
	e.m.consumers.Set(0)
	e.mu.Unlock()
	e.stop()

	errs := make([]error, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() { errs[i] = in.close(ctx) })
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("waiting for consumer instances to close: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// isClosed reports whether close has begun.
func (e *engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// count returns the number of live instances.
func (e *engine) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.instances)
}
