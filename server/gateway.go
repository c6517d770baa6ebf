package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/privacy"
	"github.com/parleyhq/parley/spool"
	"github.com/parleyhq/parley/tracker"
)

// GatewayOptions are the settings of `parley serve` that are flags rather
// than endpoints.yml keys.
type GatewayOptions struct {
	Addr            string
	AuthToken       string
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	Version         string
	Logger          *slog.Logger
}

// Gateway is a whole configured parley: the event brokers behind the
// spool, the tracker store, the conversation and consumer APIs and the
// HTTP server. Everything it opens, it closes, in dependency order.
type Gateway struct {
	Server   *Server
	Spool    *spool.Spool
	Brokers  []broker.Named
	Store    tracker.Store
	Consumer *consumer.Handler
	log      *slog.Logger
	opts     GatewayOptions
	closers  []func(context.Context) error // run in reverse order
}

// NewGateway validates every section of ep first (so a bad file fails
// before anything is opened), then opens the brokers, the spool, the
// tracker store and the consumer API's source, and builds the server.
func NewGateway(ctx context.Context, ep *config.Endpoints, o GatewayOptions) (g *Gateway, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	log := o.Logger
	spCfg, errSpool := spool.ParseConfig(ep.Section("spool"))
	trCfg, errTracker := tracker.ConfigFromEndpoints(ep)
	cCfg, errConsumer := consumer.ParseConfig(ep.Section("consumer_api"))
	_, errBrokers := broker.ConfigureAll(ep.EventBrokers)
	pCfg, errPrivacy := privacy.ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err := errors.Join(errBrokers, errSpool, errTracker, errConsumer, errPrivacy); err != nil {
		return nil, err
	}
	if set := pCfg.LogSet(); pCfg.Active() && set != nil {
		log = slog.New(privacy.LogHandler(log.Handler(), set))
		o.Logger = log
	}
	for _, w := range append(cCfg.Warnings, pCfg.Warnings...) {
		log.Warn(w)
	}
	if pCfg.Active() && spCfg.DeliveryLinger < pCfg.Hold {
		// A turn posted event by event reaches the anonymizer in one batch.
		spCfg.DeliveryLinger = pCfg.Hold
	}

	g = &Gateway{log: log, opts: o}
	defer func() {
		if err != nil {
			g.closeAll(context.WithoutCancel(ctx))
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	g.Brokers, err = broker.OpenAll(ctx, ep.EventBrokers, broker.Env{Logger: log})
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, broker.Fanout(g.Brokers).Close)
	var spoolOpts []spool.Option
	if pCfg.Active() {
		anon, err := openAnonymizer(ctx, pCfg, trCfg, reg)
		if err != nil {
			return nil, err
		}
		g.closers = append(g.closers, func(context.Context) error { return anon.Close() })
		g.Brokers = anon.Wrap(g.Brokers)
		spoolOpts = append(spoolOpts, spool.WithDeadLetterRewrite(anon.DeadLetter))
	}

	// The consumer API's source comes before the spool: the SQL source
	// wraps the SQL broker so that long polls wake on each commit.
	src, err := openConsumerSource(ctx, ep, cCfg, g.Brokers, log)
	if err != nil {
		return nil, err
	}
	if src != nil {
		g.closers = append(g.closers, src.close)
	}

	g.Spool, err = spool.Open(ctx, spCfg, g.Brokers, append(spoolOpts, spool.WithLogger(log), spool.WithRegisterer(reg))...)
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, g.Spool.Close)

	g.Store, err = tracker.Open(ctx, trCfg, log)
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, func(context.Context) error { return g.Store.Close() })

	conv, err := tracker.NewHandler(tracker.HandlerOptions{
		Store: g.Store, Publisher: g.Spool, AuthToken: o.AuthToken, MaxBodyBytes: o.MaxBodyBytes,
		Version: o.Version, Logger: log, Registerer: reg, RetryAfter: spool.RetryAfter,
	})
	if err != nil {
		return nil, err
	}
	checks := []Check{
		{Name: "spool", Probe: func(context.Context) error { return g.Spool.Ready() }},
		{Name: "tracker store", Probe: func(ctx context.Context) error { return tracker.Ping(ctx, g.Store) }},
	}
	for _, b := range g.Brokers {
		if p, ok := b.Broker.(broker.Pinger); ok {
			checks = append(checks, Check{Name: "broker " + b.Name, Probe: p.Ping})
		}
	}
	sopts := Options{
		Addr: o.Addr, Version: o.Version, Logger: log, Publisher: g.Spool, AuthToken: o.AuthToken,
		MaxBodyBytes: o.MaxBodyBytes, Registry: reg, Checks: checks,
		Prefixes: map[string]http.Handler{"/conversations/": conv},
	}
	if src != nil {
		g.Consumer, err = consumer.NewHandler(consumer.Options{Config: src.cfg, Source: src.Source, Logger: log, Registerer: reg})
		if err != nil {
			return nil, err
		}
		for _, n := range g.Consumer.StartupNotes() {
			log.Warn(n)
		}
		sopts.Mounts = append(sopts.Mounts, g.Consumer.Register)
		sopts.OnShutdown = append(sopts.OnShutdown, func(ctx context.Context) {
			if err := g.Consumer.Close(ctx); err != nil {
				log.Warn("closing consumer API", "err", err)
			}
		})
	}
	g.Server, err = New(sopts)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Run serves until ctx ends, then shuts down: requests in flight finish,
// the spool delivers what it can within the shutdown timeout (the rest
// stays on disk for the next start), then everything is closed.
func (g *Gateway) Run(ctx context.Context) error {
	ln, err := g.Server.Listen()
	if err != nil {
		g.closeAll(context.WithoutCancel(ctx))
		return err
	}
	g.log.Info("parley is listening", "addr", "http://"+ln.Addr().String(), "brokers", brokerNames(g.Brokers), "spool", g.Spool.Dir(), "version", g.opts.Version)
	serveErr := g.Server.Serve(ctx, ln, g.opts.ShutdownTimeout)
	cctx, cancel := context.WithTimeout(context.Background(), g.opts.ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, g.closeAll(cctx))
}

// Close closes everything Run would close at shutdown, for callers that
// serve the Handler themselves (tests).
func (g *Gateway) Close(ctx context.Context) error { return g.closeAll(ctx) }

func (g *Gateway) closeAll(ctx context.Context) error {
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		if err := g.closers[i](ctx); err != nil {
			errs = append(errs, err)
			g.log.Error("shutdown", "err", err)
		}
	}
	g.closers = nil
	return errors.Join(errs...)
}

func brokerNames(bs []broker.Named) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}

// openAnonymizer keeps learned PII values in the tracker store's database
// when it is SQL (every node and the next start see them), else in memory.
func openAnonymizer(ctx context.Context, c *privacy.Config, tr tracker.Config, reg prometheus.Registerer) (*privacy.Anonymizer, error) {
	env := privacy.Env{Registerer: reg}
	if tr.Type == tracker.TypeSQL {
		st, err := privacy.OpenSQLStore(ctx, tr.SQL, c.ValueTTL, c.MaxValues)
		if err != nil {
			return nil, err
		}
		env.Store = st
	}
	a, err := privacy.New(c, env)
	if err != nil && env.Store != nil {
		env.Store.Close()
	}
	return a, err
}

// CheckEndpoints validates ep's parley sections without I/O, for `parley
// config check`: the spool, the tracker store and the consumer API.
func CheckEndpoints(ep *config.Endpoints) ([]string, error) {
	var notes []string
	if _, err := spool.ParseConfig(ep.Section("spool")); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	n, err := tracker.CheckConfig(ep)
	notes = append(notes, n...)
	if err != nil {
		return notes, err
	}
	pc, err := privacy.ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err != nil {
		return notes, err
	}
	notes = append(notes, pc.Describe(broker.Names(ep.EventBrokers))...)
	return append(notes, pc.Warnings...), nil
}
