package spool

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/event"
)

// Option sets a dependency of Open.
type Option func(*options)

type options struct {
	log       *slog.Logger
	reg       prometheus.Registerer
	fsys      fileSystem
	dlRewrite DeadLetterRewrite
}

// DeadLetterRewrite returns what a broker's dead-letter file records for
// an event it rejected: the event's Rasa bytes and the error text, both
// possibly rewritten (parley's privacy rules anonymize them for brokers
// that receive anonymized events).
type DeadLetterRewrite func(broker string, ev event.Event, errText string) (rasa []byte, text string)

// WithDeadLetterRewrite sets how dead letters are rewritten before they
// are written (default: as they are).
func WithDeadLetterRewrite(f DeadLetterRewrite) Option { return func(o *options) { o.dlRewrite = f } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the spool's metrics on r (default: not
// registered anywhere; parley passes its /metrics registry). Close
// unregisters them, so a spool can be reopened on the same registry.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// withFS replaces the file system, for tests that inject disk failures.
func withFS(f fileSystem) Option { return func(o *options) { o.fsys = f } }
