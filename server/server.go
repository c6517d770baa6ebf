package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
)

// Publisher takes accepted events: the spool in production, which makes
// them durable before Publish returns.
type Publisher interface {
	Publish(ctx context.Context, evs ...event.Event) error
}

// IdempotentPublisher is a Publisher that records a request's
// Idempotency-Key and outcome atomically with its events (the spool, in the
// events' commit marker), so that POST /events with a key accepts a batch
// once however often it is retried. Without it, a request with a key is
// refused (501) rather than silently accepted twice.
type IdempotentPublisher interface {
	Publisher
	// PublishIdempotent publishes evs with key and out recorded, or, if
	// key was recorded before, publishes nothing and returns the recorded
	// outcome with replayed true.
	PublishIdempotent(ctx context.Context, key string, out idempotency.Outcome, evs ...event.Event) (rec idempotency.Outcome, replayed bool, err error)
	// LookupIdempotent returns the outcome recorded for key.
	LookupIdempotent(key string) (idempotency.Outcome, bool)
}

// Check is one readiness check: a name (a broker, the tracker store) and a
// probe that returns nil when the component is usable.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Addr is the listen address (default localhost:5005, Rasa's port).
	Addr string
	// Version is reported by GET / and GET /version.
	Version string
	// Logger receives request and lifecycle logs (default slog.Default()).
	Logger *slog.Logger
	// Publisher receives the events of POST /events. Required.
	Publisher Publisher
	// AuthToken, if set, is required as ?token= (Rasa's --auth-token) or
	// "Authorization: Bearer" on POST /events.
	AuthToken string
	// MaxBodyBytes limits request bodies (default 10 MiB); larger ones get
	// 413.
	MaxBodyBytes int64
	// CanonicalEvents makes POST /events publish each event as Rasa's event
	// class re-serializes it (ingest.Canonical). Default false: as given,
	// as Rasa's brokers publish what they are handed.
	CanonicalEvents bool
	// Mounts are extra handlers: Rasa's conversation API, the consumer
	// API. Each registers its own routes.
	Mounts []func(mux *http.ServeMux)
	// Prefixes route every request whose path starts with a prefix to its
	// handler as is, before the ServeMux would clean the path: Rasa's
	// conversation ids may contain "//", which the mux would redirect.
	Prefixes map[string]http.Handler
	// Checks are run by GET /ready.
	Checks []Check
	// OnShutdown runs when shutdown starts, before waiting for requests in
	// flight: it ends long polls and streams (the consumer API) that would
	// otherwise hold shutdown for its whole timeout.
	OnShutdown []func(ctx context.Context)
	// ReadHeaderTimeout bounds reading a request's headers (default
	// DefaultReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body (default
	// DefaultBodyTimeout); a slower client gets 408 (400 on the
	// conversation API, Rasa's shape) and its connection is closed.
	BodyTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Registry collects the metrics served at GET /metrics (default a new
	// registry with Go and process collectors).
	Registry *prometheus.Registry
	// BrowserHome, if set, is where GET / sends browsers (requests that
	// accept text/html): the web UI. Other clients keep Rasa's text.
	BrowserHome string
}

// Server is parley's HTTP server.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	srv     *http.Server
	// keys serializes POST /events requests carrying one Idempotency-Key.
	keys idempotency.Locks
}

// New builds the server and its routes; Serve starts it.
func New(o Options) (*Server, error) {
	if o.Publisher == nil {
		return nil, errors.New("server: a Publisher is required")
	}
	if o.Addr == "" {
		o.Addr = "localhost:5005"
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 10 << 20
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{opts: o, log: o.Logger, mux: http.NewServeMux(), metrics: newMetrics(o.Registry)}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /{$}", s.handleRoot)
	s.mux.HandleFunc("GET /version", s.handleVersion)
	s.mux.HandleFunc("GET /health", s.handleHealth)
	s.mux.HandleFunc("GET /ready", s.handleReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{Registry: s.opts.Registry}))
	s.mux.HandleFunc("POST /events", s.handleIngest)
	for _, mount := range s.opts.Mounts {
		mount(s.mux)
	}
}

// Handler returns the server's root handler, for tests with httptest.
func (s *Server) Handler() http.Handler {
	return s.logRequests(bodyDeadline(s.opts.BodyTimeout, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for prefix, h := range s.opts.Prefixes {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h.ServeHTTP(w, r)
				return
			}
		}
		s.serveMux(w, r)
	})))
}

// Listen binds the address; Serve then serves on it. Split so that the
// caller learns of a busy port before logging "listening".
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", s.opts.Addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting connections and waits up to shutdownTimeout for requests in
// flight (and so for the publishes they wait on).
func (s *Server) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining requests in flight", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, f := range s.opts.OnShutdown {
		f(sctx)
	}
	if err := s.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
