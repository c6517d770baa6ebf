package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	"github.com/parleyhq/parley/ui"
)

// GatewayOptions are the settings of `parley serve` that are flags rather
// than endpoints.yml keys.
type GatewayOptions struct {
	Addr            string
	AuthToken       string
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout, BodyTimeout and IdleTimeout bound requests (see
	// Options; zero means the default).
	ReadHeaderTimeout time.Duration
	BodyTimeout       time.Duration
	IdleTimeout       time.Duration
	Version           string
	Logger            *slog.Logger
	// NoUI turns the web UI at /ui/ off.
	NoUI bool
	// CanonicalEvents: see Options.CanonicalEvents.
	CanonicalEvents bool
	// Conversations overrides the endpoints.yml conversations section
	// where its fields are set (`parley serve --domain` etc.).
	Conversations tracker.ConversationsConfig

	// failStep, when set (tests), is called before each start-up step
	// and makes the step fail with its error.
	failStep func(step string) error
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
	UI       *ui.Handler // nil with NoUI
	log      *slog.Logger
	opts     GatewayOptions
	closers  []func(context.Context) error // run in reverse order
}

// NewGateway validates every section of ep first (so a bad file fails
// before anything is opened), then opens the brokers, the spool, the
// tracker store and the consumer API's source, and builds the server.
func NewGateway(ctx context.Context, ep *config.Endpoints, o GatewayOptions) (*Gateway, error) {
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
	convCfg, errConv := conversationsConfig(ep, o.Conversations)
	_, errBrokers := broker.ConfigureAll(ep.EventBrokers)
	pCfg, errPrivacy := privacy.ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err := errors.Join(errBrokers, errSpool, errTracker, errConsumer, errConv, errPrivacy); err != nil {
		return nil, err
	}
	if set := pCfg.LogSet(); pCfg.Active() && set != nil {
		log = slog.New(privacy.LogHandler(log.Handler(), set))
		o.Logger = log
	}
	domain, err := convCfg.LoadDomain()
	if err != nil {
		return nil, err
	}
	log.Info("conversation API", "domain", domain.Describe(), "model_id", convCfg.ModelID, "assistant_id", convCfg.AssistantID, "rasa_append", convCfg.RasaAppend)
	for _, w := range append(append(ep.SectionWarnings(), cCfg.Warnings...), pCfg.Warnings...) {
		log.Warn(w)
	}
	if pCfg.Active() && spCfg.DeliveryLinger < pCfg.Hold {
		// A turn posted event by event reaches the anonymizer in one batch.
		spCfg.DeliveryLinger = pCfg.Hold
	}

	return openGateway(ctx, ep, o, spCfg, trCfg, cCfg, convCfg, domain, pCfg)
}

// Start-up steps, named in the error of the one that fails.
const (
	stepBrokers        = "open event brokers"
	stepConsumerSource = "open the consumer API's source"
	stepSpool          = "open the spool"
	stepTrackerStore   = "open the tracker store"
	stepConversations  = "build the conversation API"
	stepConsumerAPI    = "build the consumer API"
	stepServer         = "build the HTTP server"
	stepListen         = "listen"
)

// openGateway opens the gateway's parts in order. When one fails, what
// was opened before it is closed in reverse order and the error names the
// step; nothing is left running.
func openGateway(ctx context.Context, ep *config.Endpoints, o GatewayOptions, spCfg spool.Config, trCfg tracker.Config, cCfg consumer.Config, convCfg tracker.ConversationsConfig, domain *tracker.Domain, pCfg *privacy.Config) (*Gateway, error) {
	log := o.Logger
	g := &Gateway{log: log, opts: o}
	fail := func(step string, err error) (*Gateway, error) {
		cerr := g.closeAll(context.WithoutCancel(ctx))
		return nil, errors.Join(fmt.Errorf("start: %s: %w", step, err), cerr)
	}
	step := g.step
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	err := step(stepBrokers)
	if err == nil {
		g.Brokers, err = broker.OpenAll(ctx, ep.EventBrokers, broker.Env{Logger: log})
	}
	if err != nil {
		return fail(stepBrokers, err)
	}
	g.closers = append(g.closers, broker.Fanout(g.Brokers).Close)
	var spoolOpts []spool.Option
	if pCfg.Active() {
		anon, err := openAnonymizer(ctx, pCfg, trCfg, reg)
		if err != nil {
			return fail("open the privacy rules", err)
		}
		g.closers = append(g.closers, func(context.Context) error { return anon.Close() })
		g.Brokers = anon.Wrap(g.Brokers)
		spoolOpts = append(spoolOpts, spool.WithDeadLetterRewrite(anon.DeadLetter))
	}

	// The consumer API's source comes before the spool: the SQL source
	// wraps the SQL broker so that long polls wake on each commit.
	var src *consumerSource
	if err = step(stepConsumerSource); err == nil {
		src, err = openConsumerSource(ctx, ep, cCfg, g.Brokers, log)
	}
	if err != nil {
		return fail(stepConsumerSource, err)
	}
	if src != nil {
		g.closers = append(g.closers, src.close)
	}

	if err = step(stepSpool); err == nil {
		g.Spool, err = spool.Open(ctx, spCfg, g.Brokers, append(spoolOpts, spool.WithLogger(log), spool.WithRegisterer(reg))...)
	}
	if err != nil {
		return fail(stepSpool, err)
	}
	g.closers = append(g.closers, g.Spool.Close)

	if err = step(stepTrackerStore); err == nil {
		g.Store, err = tracker.Open(ctx, trCfg, log)
	}
	if err != nil {
		return fail(stepTrackerStore, err)
	}
	store := g.Store
	g.closers = append(g.closers, func(context.Context) error { return store.Close() })

	// The UI's live tail sees what both APIs accept.
	var live *ui.Live
	var ingestPub, convPub Publisher = g.Spool, g.Spool
	if !o.NoUI {
		live = ui.NewLive(0)
		ingestPub, convPub = newLiveIngest(live, g.Spool, "events"), live.Tap(g.Spool, "conversations")
	}
	var conv http.Handler
	if err = step(stepConversations); err == nil {
		conv, err = tracker.NewHandler(tracker.HandlerOptions{
			Store: g.Store, Publisher: convPub, AuthToken: o.AuthToken, MaxBodyBytes: o.MaxBodyBytes,
			Version: o.Version, Logger: log, Registerer: reg, RetryAfter: spool.RetryAfter,
			Domain: domain, ModelID: convCfg.ModelID, AssistantID: convCfg.AssistantID, RasaAppend: convCfg.RasaAppend,
		})
	}
	if err != nil {
		return fail(stepConversations, err)
	}
	sp := g.Spool
	checks := []Check{
		{Name: "spool", Probe: func(context.Context) error { return sp.Ready() }},
		{Name: "tracker store", Probe: func(ctx context.Context) error { return tracker.Ping(ctx, store) }},
	}
	for _, b := range g.Brokers {
		if p, ok := b.Broker.(broker.Pinger); ok {
			checks = append(checks, Check{Name: "broker " + b.Name, Probe: p.Ping})
		}
	}
	sopts := Options{
		Addr: o.Addr, Version: o.Version, Logger: log, Publisher: ingestPub, AuthToken: o.AuthToken,
		MaxBodyBytes: o.MaxBodyBytes, Registry: reg, Checks: checks, CanonicalEvents: o.CanonicalEvents,
		ReadHeaderTimeout: o.ReadHeaderTimeout, BodyTimeout: o.BodyTimeout, IdleTimeout: o.IdleTimeout,
		Prefixes: map[string]http.Handler{"/conversations/": conv},
	}
	if src != nil {
		if err = step(stepConsumerAPI); err == nil {
			g.Consumer, err = consumer.NewHandler(consumer.Options{Config: src.cfg, Source: src.Source, Logger: log, Registerer: reg})
		}
		if err != nil {
			return fail(stepConsumerAPI, err)
		}
		ch := g.Consumer
		// Closed before its source (closers run in reverse order): Run
		// closes it earlier, at shutdown, which makes this a no-op.
		g.closers = append(g.closers, ch.Close)
		for _, n := range ch.StartupNotes() {
			log.Warn(n)
		}
		sopts.Mounts = append(sopts.Mounts, ch.Register)
		sopts.OnShutdown = append(sopts.OnShutdown, func(ctx context.Context) {
			if err := ch.Close(ctx); err != nil {
				log.Warn("closing consumer API", "err", err)
			}
		})
	}
	if !o.NoUI {
		uo := ui.Options{
			Conversations: ui.TrackerConversations(g.Store), Delivery: g.Spool, Live: live, Gatherer: reg,
			AuthToken: o.AuthToken, Node: o.Addr, Version: o.Version, Logger: log,
		}
		if g.Consumer != nil {
			uo.Consumers = g.Consumer
			if !g.Consumer.Open() {
				uo.CheckClient = g.Consumer.CheckClient
			}
		}
		if g.UI, err = ui.New(uo); err != nil {
			return fail(stepServer, err)
		}
		g.closers = append(g.closers, g.UI.Close)
		sopts.Mounts = append(sopts.Mounts, g.UI.Register)
		sopts.BrowserHome = "/ui/"
		// Open transcripts and tails would hold shutdown otherwise.
		sopts.OnShutdown = append(sopts.OnShutdown, func(ctx context.Context) { _ = g.UI.Close(ctx) })
	}
	if err = step(stepServer); err == nil {
		g.Server, err = New(sopts)
	}
	if err != nil {
		return fail(stepServer, err)
	}
	return g, nil
}

// Run serves until ctx ends, then shuts down: requests in flight finish,
// the spool delivers what it can within the shutdown timeout (the rest
// stays on disk for the next start), then everything is closed.
func (g *Gateway) Run(ctx context.Context) error {
	err := g.step(stepListen)
	var ln net.Listener
	if err == nil {
		ln, err = g.Server.Listen()
	}
	if err != nil {
		return errors.Join(fmt.Errorf("start: %s: %w", stepListen, err), g.closeAll(context.WithoutCancel(ctx)))
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

func (g *Gateway) step(name string) error {
	if g.opts.failStep != nil {
		return g.opts.failStep(name)
	}
	return nil
}

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
	sec := ep.Section("conversations")
	c, err := tracker.ParseConversationsConfig(sec)
	if err != nil {
		return notes, err
	}
	if sec != nil {
		notes = append(notes, sec.Warnings()...)
	}
	d, err := c.LoadDomain()
	if err != nil {
		return notes, err
	}
	notes = append(notes, "conversation API domain: "+d.Describe())
	pc, err := privacy.ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err != nil {
		return notes, err
	}
	notes = append(notes, pc.Describe(broker.Names(ep.EventBrokers))...)
	return append(notes, pc.Warnings...), nil
}

// conversationsConfig reads the conversations section and applies the
// flags' overrides.
func conversationsConfig(ep *config.Endpoints, over tracker.ConversationsConfig) (tracker.ConversationsConfig, error) {
	c, err := tracker.ParseConversationsConfig(ep.Section("conversations"))
	if err != nil {
		return c, err
	}
	if over.Domain != "" {
		c.Domain = over.Domain
	}
	if over.ModelID != "" {
		c.ModelID = over.ModelID
	}
	if over.AssistantID != "" {
		c.AssistantID = over.AssistantID
	}
	c.RasaAppend = c.RasaAppend || over.RasaAppend
	return c, nil
}

var _ IdempotentPublisher = (*spool.Spool)(nil)
