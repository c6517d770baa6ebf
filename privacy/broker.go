package privacy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

// Env is what an Anonymizer needs from its surroundings.
type Env struct {
	// Store keeps learned values across nodes and restarts; nil keeps them
	// in memory only (lost on restart).
	Store Store
	// Registerer receives parley_privacy_anonymized_fields_total; nil
	// registers nothing.
	Registerer prometheus.Registerer
}

// Anonymizer applies a Config's rule sets: it wraps brokers and holds the
// values learned per conversation, shared by all of them.
type Anonymizer struct {
	cfg      *Config
	vals     *values
	store    Store
	slots    map[string]bool // slot names any rule set names: their values are learned
	entities map[string]bool
	names    nameTokens // a quick test for events with values to learn
	fields   *prometheus.CounterVec

	mu      sync.Mutex
	wrapped map[string]*Broker // by broker name, for dead letters
}

// New makes the Anonymizer of cfg. Close it to close env.Store.
func New(cfg *Config, env Env) (*Anonymizer, error) {
	a := &Anonymizer{cfg: cfg, vals: newValues(cfg, env.Store), store: env.Store, slots: map[string]bool{}, entities: map[string]bool{}}
	for _, s := range cfg.Sets {
		for n := range s.bySlot {
			a.slots[n] = true
		}
		for n := range s.byEntity {
			a.entities[n] = true
		}
	}
	a.names = newNameTokens(a.slots, a.entities)
	a.fields = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_privacy_anonymized_fields_total",
		Help: "Values anonymized in events sent to brokers, by rule set and rule (slot:NAME, entity:NAME, recognizer:NAME).",
	}, []string{"rule_set", "rule"})
	if env.Registerer != nil {
		if err := env.Registerer.Register(a.fields); err != nil {
			return nil, fmt.Errorf("privacy: register metrics: %w", err)
		}
	}
	return a, nil
}

// Config returns the configuration a was made with.
func (a *Anonymizer) Config() *Config { return a.cfg }

// Close closes the learned-values store.
func (a *Anonymizer) Close() error {
	if a.store != nil {
		return a.store.Close()
	}
	return nil
}

// Wrap returns brokers with each one, but those that opt out, behind its
// rule set. brokers are in event_broker order, as broker.OpenAll returns
// them.
func (a *Anonymizer) Wrap(brokers []broker.Named) []broker.Named {
	out := make([]broker.Named, len(brokers))
	for i, b := range brokers {
		out[i] = b
		if set := a.cfg.Set(i); set != nil {
			w := a.Broker(set, b.Broker)
			out[i].Broker = w
			a.mu.Lock()
			if a.wrapped == nil {
				a.wrapped = map[string]*Broker{}
			}
			a.wrapped[b.Name] = w
			a.mu.Unlock()
		}
	}
	return out
}

// Broker returns b behind set's rules.
func (a *Anonymizer) Broker(set *RuleSet, b broker.Broker) *Broker {
	return &Broker{a: a, set: set, inner: b}
}

// Broker anonymizes the events of each Publish with its rule set, then
// publishes them to the broker it wraps.
type Broker struct {
	a     *Anonymizer
	set   *RuleSet
	inner broker.Broker
}

var (
	_ broker.Broker = (*Broker)(nil)
	_ broker.Pinger = (*Broker)(nil)
)

// Unwrap returns the wrapped broker.
func (b *Broker) Unwrap() broker.Broker { return b.inner }

// RuleSet returns the broker's rule set.
func (b *Broker) RuleSet() *RuleSet { return b.set }

// Publish learns the PII values evs carry for each conversation (slot
// events, entities), anonymizes every event with them, the values learned
// before and the recognizers, and publishes the result. A turn's user
// message is anonymized with the slot its value fills even when the slot
// event comes later in evs.
func (b *Broker) Publish(ctx context.Context, evs ...event.Event) error {
	out, err := b.Anonymize(ctx, evs)
	if err != nil {
		return err
	}
	return b.inner.Publish(ctx, out...)
}

// Anonymize returns evs as Publish would send them: evs itself when
// nothing changes (it is never modified: the caller may publish it again).
func (b *Broker) Anonymize(ctx context.Context, evs []event.Event) ([]event.Event, error) {
	a := b.a
	// First pass: the values this batch teaches, per conversation. Only
	// events naming a slot or entity of the rules are parsed for them.
	var named []bool
	if len(a.slots) > 0 || len(a.entities) > 0 {
		var learned map[string][]Learned
		for i, ev := range evs {
			if !a.names.in(ev.RasaJSON()) {
				continue
			}
			if named == nil {
				named = make([]bool, len(evs))
				learned = map[string][]Learned{}
			}
			named[i] = true
			learned[ev.SenderID] = learn(learned[ev.SenderID], ev, a.slots, a.entities)
		}
		for s, vs := range learned {
			if err := a.vals.add(ctx, s, vs); err != nil {
				return nil, err
			}
		}
	}
	// Second pass: rewrite, with what is known of each conversation.
	w := newRewriter(b.set, a.cfg.MinValueLength)
	var out []event.Event
	cur, first := "", true
	for i, ev := range evs {
		if first || ev.SenderID != cur {
			cur, first = ev.SenderID, false
			known, err := a.vals.get(ctx, cur)
			if err != nil {
				return nil, err
			}
			w.setKnown(known)
		}
		nev, changed, err := w.event(ev, named != nil && named[i])
		if err != nil {
			// Bytes that do not parse cannot be checked: better not to send
			// them to a destination that was promised no PII.
			return nil, broker.Permanent(fmt.Errorf("privacy: event %s: %w", ev.ID, err))
		}
		if changed && out == nil {
			out = make([]event.Event, i, len(evs))
			copy(out, evs[:i])
		}
		if out != nil {
			out = append(out, nev)
		}
	}
	for r, n := range w.counts {
		a.fields.WithLabelValues(b.set.ID, r.Label).Add(float64(n))
	}
	if out == nil {
		return evs, nil
	}
	return out, nil
}

// DeadLetter is a spool.DeadLetterRewrite: a broker that receives
// anonymized events gets anonymized dead letters (event and error text),
// unless the privacy section's dead_letters is false.
func (a *Anonymizer) DeadLetter(name string, ev event.Event, errText string) ([]byte, string) {
	a.mu.Lock()
	b := a.wrapped[name]
	a.mu.Unlock()
	if b == nil || !a.cfg.DeadLetters {
		return ev.RasaJSON(), errText
	}
	ctx := context.Background()
	known, _ := a.vals.get(ctx, ev.SenderID) // best effort: the recognizers still apply
	w := newRewriter(b.set, a.cfg.MinValueLength)
	w.setKnown(known)
	text, _ := w.text(errText)
	out, _, err := w.event(ev, true)
	if err != nil {
		// Not JSON: anonymize it as text rather than keep it.
		s, _ := w.text(string(ev.RasaJSON()))
		return []byte(s), text
	}
	return out.RasaJSON(), text
}

// LogSet returns the rule set whose recognizers clean parley's logs (the
// default set, when logs is true), or nil.
func (c *Config) LogSet() *RuleSet {
	if c == nil || !c.Logs {
		return nil
	}
	return c.Sets[DefaultSet]
}

// Close closes the wrapped broker.
func (b *Broker) Close(ctx context.Context) error { return b.inner.Close(ctx) }

// Ping pings the wrapped broker if it can be pinged.
func (b *Broker) Ping(ctx context.Context) error {
	if p, ok := b.inner.(broker.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Text anonymizes free text (a log line, an error) with set's recognizers
// and nothing learned.
func (set *RuleSet) Text(s string) string {
	if set.Empty() || len(set.recs) == 0 {
		return s
	}
	w := newRewriter(set, 0)
	out, _ := w.text(s)
	return out
}

// LogHandler returns h with the string attributes and message of every
// record passed through set.Text, so recognizable PII (emails, phone
// numbers, cards, IBANs) in errors and log lines does not reach the logs.
func LogHandler(h slog.Handler, set *RuleSet) slog.Handler {
	if set.Empty() || len(set.recs) == 0 {
		return h
	}
	return &logHandler{h: h, set: set}
}

type logHandler struct {
	h   slog.Handler
	set *RuleSet
}

func (l *logHandler) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, l.set.Text(r.Message), r.PC)
	r.Attrs(func(at slog.Attr) bool {
		nr.AddAttrs(l.attr(at))
		return true
	})
	return l.h.Handle(ctx, nr)
}

func (l *logHandler) attr(at slog.Attr) slog.Attr {
	v := at.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(at.Key, l.set.Text(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = l.attr(g)
		}
		return slog.Group(at.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(at.Key, l.set.Text(err.Error()))
		}
		return slog.String(at.Key, l.set.Text(v.String()))
	}
	return at
}

func (l *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = l.attr(a)
	}
	return &logHandler{h: l.h.WithAttrs(out), set: l.set}
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{h: l.h.WithGroup(name), set: l.set}
}

// FromEndpoints parses ep's privacy section and wraps brokers (opened from
// ep.EventBrokers, in order) with their rule sets. It returns brokers as
// they are and a nil Anonymizer when no broker anonymizes.
func FromEndpoints(ep *config.Endpoints, brokers []broker.Named, env Env) ([]broker.Named, *Anonymizer, error) {
	cfg, err := ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.Active() {
		return brokers, nil, nil
	}
	a, err := New(cfg, env)
	if err != nil {
		return nil, nil, err
	}
	return a.Wrap(brokers), a, nil
}
