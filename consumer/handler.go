package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/consumer/auth"
)

// Options configure NewHandler.
type Options struct {
	// Config is the consumer_api section (ParseConfig).
	Config Config
	// Source is the log read: kafkasrc.New or sqlsrc.New. The caller
	// closes it after the Handler.
	Source Source
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the API's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Handler serves the REST consumer API. Mount it at the server's root
// (ServeHTTP) or add its routes to a mux (Register).
type Handler struct {
	cfg    Config
	src    Source
	log    *slog.Logger
	eng    *engine
	auth   *auth.Authority
	lim    *limiter // reads, per consumer instance; calls outside instances, per caller
	failed *limiter // failed authentications, per address
	m      *metrics
	routes []route
	mux    *http.ServeMux
	// shadowed maps the two-segment Mix paths, which Confluent's
	// POST /consumers/{group} would otherwise match, to their methods.
	shadowed map[string]string
	// groups records the owners of consumer groups for sources that do
	// not record them themselves (GroupOwners).
	groupsMu sync.Mutex
	groups   map[string]string
}

// Failed authentications allowed per address: a burst, then one a second,
// so that a secret or a token cannot be guessed quickly.
const (
	authFailRate  = 1
	authFailBurst = 20
)

// NewHandler makes the API's handler and starts its housekeeping (idle
// consumer expiry); Close stops it.
func NewHandler(opts Options) (*Handler, error) {
	if opts.Source == nil {
		return nil, errors.New("consumer API: no source")
	}
	cfg := opts.Config
	def := DefaultConfig()
	if cfg.Topic == "" {
		cfg.Topic = opts.Source.DefaultTopic()
	}
	setDefault(&cfg.TokenTTL, def.TokenTTL)
	setDefault(&cfg.IdleTimeout, def.IdleTimeout)
	setDefault(&cfg.MaxWait, def.MaxWait)
	setDefault(&cfg.AutoCommitInterval, def.AutoCommitInterval)
	setDefault(&cfg.Heartbeat, def.Heartbeat)
	setDefault(&cfg.MaxRecords, def.MaxRecords)
	setDefault(&cfg.MaxBytes, def.MaxBytes)
	if cfg.RequestTimeout < 0 {
		cfg.RequestTimeout = def.RequestTimeout
	}
	if cfg.RateBurst < 1 {
		cfg.RateBurst = max(1, int(math.Ceil(cfg.RateLimit)))
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "consumer-api")
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("consumer API metrics: %w", err)
	}
	a, err := auth.NewAuthority(cfg.Clients, cfg.SigningKey, cfg.TokenTTL, nil)
	if err != nil {
		return nil, fmt.Errorf("consumer API: %w", err)
	}
	h := &Handler{
		cfg:    cfg,
		src:    opts.Source,
		log:    log,
		auth:   a,
		lim:    newLimiter(cfg.RateLimit, cfg.RateBurst),
		failed: newLimiter(authFailRate, authFailBurst),
		m:      m,
		groups: map[string]string{},
		routes: routes(),
		mux:    http.NewServeMux(),
	}
	h.eng = newEngine(opts.Source, cfg, log, m)
	h.shadowed = map[string]string{}
	for _, rt := range h.routes {
		if strings.Count(rt.path, "/") == 2 && strings.HasPrefix(rt.path, "/consumers/") && !strings.Contains(rt.path, "{") {
			h.shadowed[rt.path] = strings.TrimPrefix(h.shadowed[rt.path]+", "+rt.method, ", ")
		}
	}
	h.Register(h.mux)
	return h, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Register adds the API's routes to mux (Go 1.22 method and path
// patterns), each also with a trailing slash (clients such as
// pymapr-kafkarest add one). Requests for other paths are the mux's to
// answer; ServeHTTP answers them with a JSON 404 instead.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, rt := range h.routes {
		hh := h.wrap(rt)
		mux.Handle(rt.pattern(), hh)
		if !strings.HasSuffix(rt.path, "/") {
			mux.Handle(rt.pattern()+"/{$}", hh)
		}
	}
}

// Patterns lists the ServeMux patterns Register adds.
func (h *Handler) Patterns() []string {
	out := make([]string, len(h.routes))
	for i, rt := range h.routes {
		out[i] = rt.pattern()
	}
	return out
}

// ServeHTTP serves the API, with JSON errors for unknown paths and
// methods.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// Let the mux decide between 404 and 405 (with its Allow
		// header), but answer in the API's error shape.
		h.notFound(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	probe := &statusProbe{header: http.Header{}}
	hh, _ := h.mux.Handler(r)
	hh.ServeHTTP(probe, r)
	if allow := probe.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	if probe.status == http.StatusMethodNotAllowed {
		writeError(w, apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "HTTP 405 Method Not Allowed"))
		return
	}
	writeError(w, apiErr(http.StatusNotFound, CodeNotFound, "HTTP 404 Not Found"))
}

// statusProbe records what the mux's fallback handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }

// Open reports that no clients are configured: the API needs no token and
// answers loopback callers only.
func (h *Handler) Open() bool { return !h.auth.Enabled() }

// StartupNotes are the messages the server should log at start-up: how
// the API is secured.
func (h *Handler) StartupNotes() []string {
	var notes []string
	if h.Open() {
		notes = append(notes, "consumer API is open: no consumer_api.clients are configured, so it needs no token and refuses every request that does not come from a loopback address; configure clients to serve other hosts")
	} else if h.auth.Ephemeral() {
		notes = append(notes, "consumer API tokens are signed with a key generated at start-up (consumer_api.signing_key is not set): they stop working when parley restarts")
	}
	return notes
}

// Close closes every consumer instance, committing for those with auto
// commit, and stops the housekeeping. It does not close the Source.
func (h *Handler) Close(ctx context.Context) error {
	return h.eng.close(ctx)
}

// ConsumerCount returns the number of live consumer instances.
func (h *Handler) ConsumerCount() int { return h.eng.count() }

// reqCtx is what the wrapper resolved for a handler.
type reqCtx struct {
	route  *route
	claims *auth.Claims // nil when the API is open
	owner  string       // client_id, "" when open
	key    instanceKey
	in     *instance // for routes acting on an instance
}

// allow checks the token may read topic.
func (rc *reqCtx) allow(topic string) error {
	if rc.claims == nil || rc.claims.Allows(topic) {
		return nil
	}
	return forbiddenTopic(topic)
}

// wrap adds to a route what every call needs: the loopback guard of open
// mode, the token, the rate limit, the instance lookup, metrics and
// errors in the API's shape.
func (h *Handler) wrap(rt route) http.Handler {
	rt.okType = cmp.Or(rt.okType, "application/json")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() { h.m.requests.WithLabelValues(rt.op, strconv.Itoa(sw.code())).Inc() }()
		if err := h.serve(sw, r, &rt); err != nil {
			if sw.wrote() {
				// Mid-stream: the status is sent; only log.
				h.log.Debug("consumer API request failed after the response started", "op", rt.op, "err", err)
				return
			}
			e := asAPIError(err)
			if e.Status >= 500 {
				h.log.Warn("consumer API request failed", "op", rt.op, "err", err)
			}
			writeErrorAs(sw, e, errorType(&rt))
		}
	})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt *route) error {
	rc := &reqCtx{route: rt}
	if h.Open() && !fromLoopback(r) {
		return apiErr(http.StatusForbidden, CodeForbidden, "The consumer API has no clients configured (consumer_api.clients), so it only answers requests from loopback addresses.")
	}
	addr := remoteIP(r)
	switch {
	case rt.op == "token":
		// Its own bucket per address: a token request (a slow hash to
		// check) never competes with anything else.
		if err := h.limit("token:"+addr, "token requests from one address"); err != nil {
			return err
		}
	case rt.public:
		if err := h.limit("public:"+addr, "requests from one address"); err != nil {
			return err
		}
	}
	if h.auth.Enabled() && !rt.public {
		if err := h.authThrottled(addr); err != nil {
			return err
		}
		c, err := h.authenticate(r)
		if err != nil {
			h.failed.allow(addr, time.Now())
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
			return err
		}
		rc.claims, rc.owner = &c, c.Subject
	}
	switch rt.key {
	case keyHeaders:
		rc.key = instanceKey{r.Header.Get("consumer-group"), r.Header.Get("consumer-name")}
		if rc.key.group == "" || rc.key.name == "" {
			return invalid("The consumer-group and consumer-name headers name the consumer instance; both are required.")
		}
	case keyPath:
		rc.key = instanceKey{r.PathValue("group"), r.PathValue("name")}
	case keyGroup:
		rc.key.group = r.PathValue("group")
	}
	if rt.key != keyNone && !rt.create {
		in, err := h.eng.get(rc.key, rc.owner)
		if err != nil {
			return err
		}
		defer in.release()
		rc.in = in
	}
	if rt.read {
		// Reads are limited per instance, once it is known to exist: a
		// call that fails to find its instance costs nothing.
		if err := h.limit("instance:"+rc.key.group+"\x00"+rc.key.name, "reads per consumer instance"); err != nil {
			return err
		}
	}
	return rt.serve(h, w, r, rc)
}

// limit takes a token from key's bucket, or returns the 429.
func (h *Handler) limit(key, what string) error {
	ok, wait := h.lim.allow(key, time.Now())
	if ok {
		return nil
	}
	e := apiErr(http.StatusTooManyRequests, CodeRateLimited, "Rate limit exceeded: at most %g %s a second; retry after %s.", h.cfg.RateLimit, what, wait.Round(time.Millisecond))
	e.RetryAfter = wait
	return e
}

// authThrottled refuses an address that failed to authenticate too often
// lately, before its credentials are looked at.
func (h *Handler) authThrottled(addr string) error {
	wait := h.failed.wait(addr, time.Now())
	if wait <= 0 {
		return nil
	}
	e := apiErr(http.StatusTooManyRequests, CodeRateLimited, "Too many failed authentications from this address; retry after %s.", wait.Round(time.Millisecond))
	e.RetryAfter = wait
	return e
}

// authenticate checks the bearer token.
func (h *Handler) authenticate(r *http.Request) (auth.Claims, error) {
	authz := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(authz, " ")
	if authz == "" {
		return auth.Claims{}, apiErr(http.StatusUnauthorized, CodeUnauthorized, "Authorization: Bearer <token> is required; get a token at POST /oauth2/token.")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return auth.Claims{}, apiErr(http.StatusUnauthorized, CodeUnauthorized, "The Authorization header must be \"Bearer <token>\".")
	}
	c, err := h.auth.Verify(strings.TrimSpace(tok))
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return auth.Claims{}, apiErr(http.StatusUnauthorized, CodeUnauthorized, "The access token has expired; get a new one at POST /oauth2/token.")
	case err != nil:
		return auth.Claims{}, apiErr(http.StatusUnauthorized, CodeUnauthorized, "The access token is not valid: %v.", err)
	}
	return c, nil
}

// fromLoopback reports whether the request comes from this host: its
// peer is a loopback address (or a Unix socket) and no proxy header says
// it was forwarded from elsewhere.
func fromLoopback(r *http.Request) bool {
	if r.RemoteAddr != "" && r.RemoteAddr != "@" {
		if !isLoopback(r.RemoteAddr) {
			return false
		}
	}
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, a := range strings.Split(v, ",") {
			if !isLoopback(strings.TrimSpace(a)) {
				return false
			}
		}
	}
	if v := r.Header.Get("X-Real-IP"); v != "" && !isLoopback(v) {
		return false
	}
	for _, v := range r.Header.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "for") && !isLoopback(strings.Trim(val, `"[]`)) {
					return false
				}
			}
		}
	}
	return true
}

func isLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

func remoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// statusWriter records the status sent, for metrics and for knowing
// whether an error can still be reported.
type statusWriter struct {
	http.ResponseWriter
	status int // 0 until the response has started
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrote reports whether the response has started.
func (w *statusWriter) wrote() bool { return w.status != 0 }

// Unwrap lets http.ResponseController reach Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int { return cmp.Or(w.status, http.StatusOK) }
