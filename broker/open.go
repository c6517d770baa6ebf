package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

// Named is an open broker with the name it goes by in logs, metrics and
// errors: its type, plus "#n" when several brokers share a type.
type Named struct {
	Name string
	Broker
}

// Names returns the names OpenAll gives to secs, in order: the section's
// name key when set (a parley extension; it keeps the spool's delivery
// position of a broker when brokers are added or reordered), else the
// type, with "#n" when several brokers share a type.
func Names(secs []*config.Section) []string {
	count := map[string]int{}
	types := make([]string, len(secs))
	for i, s := range secs {
		t := s.Type()
		if t == "" {
			t = DefaultType
		}
		types[i] = t
		if s.String("name", "") == "" {
			count[t]++
		}
	}
	seen := map[string]int{}
	names := make([]string, len(secs))
	for i, t := range types {
		if n := secs[i].String("name", ""); n != "" {
			names[i] = n
			continue
		}
		names[i] = t
		if count[t] > 1 {
			seen[t]++
			names[i] = t + "#" + strconv.Itoa(seen[t])
		}
	}
	return names
}

// ConfigureAll validates every section and reports all errors at once.
func ConfigureAll(secs []*config.Section) ([]Opener, error) {
	// Duplicate names are recorded first, so that each section's errors
	// (its Err, which Configure returns) hold them once with the rest.
	dup := make([]bool, len(secs))
	seen := map[string]int{}
	for i, n := range Names(secs) {
		if j, ok := seen[n]; ok {
			secs[i].Errorf("name", "broker name %q is already used by event_broker[%d]; give each broker its own name", n, j)
			dup[i] = true
		}
		seen[n] = i
	}
	openers := make([]Opener, len(secs))
	var errs []error
	for i, s := range secs {
		o, err := Configure(s)
		if err == nil && dup[i] {
			err = s.Err()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		openers[i] = o
	}
	if len(errs) > 0 {
		return nil, config.Errors(errs)
	}
	return openers, nil
}

// OpenAll configures and opens a broker per section. If one fails, those
// already open are closed.
func OpenAll(ctx context.Context, secs []*config.Section, env Env) ([]Named, error) {
	openers, err := ConfigureAll(secs)
	if err != nil {
		return nil, err
	}
	names := Names(secs)
	out := make([]Named, 0, len(secs))
	for i, open := range openers {
		b, err := open(ctx, env)
		if err != nil {
			for _, o := range out {
				_ = o.Close(context.WithoutCancel(ctx))
			}
			return nil, fmt.Errorf("open %s broker (%s:%d): %w", names[i], secs[i].File(), secs[i].Line(), err)
		}
		out = append(out, Named{Name: names[i], Broker: b})
	}
	return out, nil
}

// Fanout publishes to several brokers at once. Publish returns when every
// broker has the events, or with the errors of those that failed (the
// others may still have them: at-least-once).
type Fanout []Named

var _ Broker = Fanout(nil)

// Publish publishes evs to every broker concurrently.
func (f Fanout) Publish(ctx context.Context, evs ...event.Event) error {
	if len(f) == 1 {
		if err := f[0].Publish(ctx, evs...); err != nil {
			return fmt.Errorf("%s: %w", f[0].Name, err)
		}
		return nil
	}
	errs := make([]error, len(f))
	done := make(chan struct{})
	for i := range f {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := f[i].Publish(ctx, evs...); err != nil {
				errs[i] = fmt.Errorf("%s: %w", f[i].Name, err)
			}
		}()
	}
	for range f {
		<-done
	}
	return errors.Join(errs...)
}

// Close closes every broker.
func (f Fanout) Close(ctx context.Context) error {
	var errs []error
	for _, b := range f {
		if err := b.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Ping pings every broker that can be pinged.
func (f Fanout) Ping(ctx context.Context) error {
	var errs []error
	for _, b := range f {
		if p, ok := b.Broker.(Pinger); ok {
			if err := p.Ping(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", b.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
