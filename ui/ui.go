package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

//go:embed assets templates
var files embed.FS

// Options configure the UI. Zero values take the documented defaults.
type Options struct {
	// Conversations is the tracker store (nil: the page says there is
	// none).
	Conversations Conversations
	// Delivery is the spool (nil: the page says there is none).
	Delivery Delivery
	// Consumers is the consumer API (nil when it is off).
	Consumers Consumers
	// Live is the tap of accepted events (nil: no live tail, and
	// transcripts refresh on PollInterval only).
	Live *Live
	// Gatherer is the metrics registry the delivery chart samples (nil:
	// no chart).
	Gatherer prometheus.Gatherer
	// AuthToken, if set, is a password of the login page (parley serve
	// --auth-token).
	AuthToken string
	// CheckClient, if set, accepts a consumer API client's id and secret
	// on the login page. With neither AuthToken nor CheckClient the UI
	// answers loopback callers only.
	CheckClient func(id, secret string) bool
	// Node names this parley in the page header (e.g. the listen
	// address): with several nodes, each UI shows its own spool, tail
	// and consumer instances.
	Node    string
	Version string
	Logger  *slog.Logger
	// SampleInterval is how often the delivery chart samples the metrics
	// (default 5s); ChartWindow how far back the chart goes (default
	// 10m).
	SampleInterval time.Duration
	ChartWindow    time.Duration
	// PollInterval is how often an open transcript re-reads the tracker
	// store, for writes made by other nodes or by Rasa sharing it
	// (default 2s); writes through this node show at once.
	PollInterval time.Duration
	// RefreshInterval is how often the delivery and consumer pages
	// refresh their tables (default 2s).
	RefreshInterval time.Duration
}

// Handler serves the UI under /ui/.
type Handler struct {
	o     Options
	log   *slog.Logger
	auth  *sessions
	rates *rates
	dead  deadCounter
	pages map[string]*template.Template
	mux   *http.ServeMux

	stop context.CancelFunc
	wg   sync.WaitGroup
	// done ends open event streams at Close.
	done chan struct{}
	once sync.Once
}

// New builds the UI and starts its metrics sampler; Close stops it.
func New(o Options) (*Handler, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = 5 * time.Second
	}
	if o.ChartWindow <= 0 {
		o.ChartWindow = 10 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 2 * time.Second
	}
	a, err := newSessions(o.AuthToken, o.CheckClient)
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handler{
		o: o, log: o.Logger.With("component", "ui"), auth: a, pages: pages, mux: http.NewServeMux(),
		rates: &rates{g: o.Gatherer, interval: o.SampleInterval, window: o.ChartWindow},
		stop:  cancel, done: make(chan struct{}),
	}
	h.routes()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.rates.run(ctx)
	}()
	return h, nil
}

// Close stops the sampler and ends open event streams. Idempotent.
func (h *Handler) Close(context.Context) error {
	h.once.Do(func() {
		h.stop()
		close(h.done)
	})
	h.wg.Wait()
	return nil
}

// Register mounts the UI at /ui/ on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("/ui/", h)
}

// ServeHTTP serves the UI with its security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) routes() {
	sub, _ := fs.Sub(files, "assets")
	static := http.StripPrefix("/ui/assets/", http.FileServerFS(sub))
	h.mux.Handle("GET /ui/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		static.ServeHTTP(w, r)
	}))
	h.mux.HandleFunc("GET /ui/login", h.loginPage)
	h.mux.HandleFunc("POST /ui/login", h.loginPost)
	h.mux.HandleFunc("POST /ui/logout", h.logout)
	h.mux.Handle("GET /ui/{$}", h.guard(false, func(w http.ResponseWriter, r *http.Request) {
		if viewerOf(r).client != "" {
			http.Redirect(w, r, "/ui/consumers", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/ui/conversations", http.StatusSeeOther)
	}))
	h.mux.Handle("GET /ui/conversations", h.guard(true, h.conversations))
	h.mux.Handle("GET /ui/conversation", h.guard(true, h.conversation))
	h.mux.Handle("GET /ui/conversation/stream", h.guard(true, h.conversationStream))
	h.mux.Handle("GET /ui/live", h.guard(true, h.live))
	h.mux.Handle("GET /ui/live/stream", h.guard(true, h.liveStream))
	h.mux.Handle("GET /ui/delivery", h.guard(true, h.delivery))
	h.mux.Handle("GET /ui/deadletters", h.guard(true, h.deadLetters))
	h.mux.Handle("GET /ui/consumers", h.guard(false, h.consumers))
	h.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound)
	})
}

type ctxKey struct{}

// viewer is who a request is from: the operator (the --auth-token
// holder, or a loopback caller when no token is set), or a consumer API
// client, a tenant, who sees only its own consumer instances.
type viewer struct {
	name   string // shown in the header
	client string // the client_id for a client, "" for the operator
}

func viewerOf(r *http.Request) viewer {
	v, _ := r.Context().Value(ctxKey{}).(viewer)
	return v
}

// guard lets a request through for the operator, and for a consumer API
// client unless operatorOnly. Without a session, pages redirect to the
// login page and streams and fragments get 401; with no login configured
// only loopback callers get in.
func (h *Handler) guard(operatorOnly bool, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v viewer
		subject := ""
		if h.auth.enabled() {
			subject = h.auth.subject(r, time.Now())
		}
		switch {
		case subject == subjectToken:
			v = viewer{name: "operator"}
		case strings.HasPrefix(subject, subjectClient):
			v = viewer{name: subject, client: strings.TrimPrefix(subject, subjectClient)}
		case h.auth.token == "" && fromLoopback(r):
			// No operator token: this host is the operator, as with no
			// login at all.
			v = viewer{}
		case !h.auth.enabled():
			h.forbidden(w, r, "The web UI has no login configured (parley serve --auth-token, or consumer_api.clients), so it only answers requests from this host's loopback address.")
			return
		case r.URL.Query().Get("partial") != "" || strings.HasSuffix(r.URL.Path, "/stream") || r.Header.Get("Authorization") != "":
			http.Error(w, "401 log in at /ui/login", http.StatusUnauthorized)
			return
		default:
			http.Redirect(w, r, "/ui/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if operatorOnly && v.client != "" {
			h.forbidden(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, v)), "This page shows every conversation and this node's delivery: it needs the operator's login (parley serve --auth-token). A consumer API client sees its own consumers.")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, v)))
	})
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, text string) {
	w.WriteHeader(http.StatusForbidden)
	h.render(w, r, "message", "Forbidden", message{Text: text})
}

type message struct{ Text string }

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Node    string
	Version string
	Subject string
	Login   bool // a login is configured: show "log out"
	// Operator sees every page; a consumer API client only Consumers.
	Operator bool
	Data     any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	t, ok := h.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	v := viewerOf(r)
	var buf bytes.Buffer
	err := t.ExecuteTemplate(&buf, "layout", page{
		Title: title, Nav: name, Node: h.o.Node, Version: h.o.Version, Subject: v.name, Login: h.auth.enabled(),
		Operator: v.client == "", Data: data,
	})
	if err != nil {
		h.log.Error("rendering page", "page", name, "err", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// fragment renders one named template of a page alone (refreshes, SSE).
func (h *Handler) fragment(name, tmpl string, data any) (string, error) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, tmpl, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (h *Handler) writeFragment(w http.ResponseWriter, name, tmpl string, data any) {
	s, err := h.fragment(name, tmpl, data)
	if err != nil {
		h.log.Error("rendering fragment", "page", name, "err", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(s))
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if !h.auth.enabled() {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	h.render(w, r, "login", "Log in", loginData{Next: safeNext(r.URL.Query().Get("next")), Token: h.o.AuthToken != "", Clients: h.o.CheckClient != nil})
}

type loginData struct {
	Next          string
	Token         bool
	Clients       bool
	Error         string
	ClientIDValue string
}

func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request) {
	if !h.auth.enabled() {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "403 cross-site login refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	now := time.Now()
	addr := remoteIP(r)
	data := loginData{Next: safeNext(r.PostFormValue("next")), Token: h.o.AuthToken != "", Clients: h.o.CheckClient != nil, ClientIDValue: r.PostFormValue("client_id")}
	if h.auth.tooManyFailures(addr, false, now) {
		w.WriteHeader(http.StatusTooManyRequests)
		data.Error = "Too many failed logins from your address; wait a minute."
		h.render(w, r, "login", "Log in", data)
		return
	}
	subject, ok := h.auth.login(r)
	if !ok {
		h.auth.tooManyFailures(addr, true, now)
		h.log.Info("ui login failed", "remote", addr)
		w.WriteHeader(http.StatusUnauthorized)
		data.Error = "Wrong token or client credentials."
		h.render(w, r, "login", "Log in", data)
		return
	}
	h.auth.issue(w, r, subject, now)
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "403 cross-site request refused", http.StatusForbidden)
		return
	}
	clearSession(w, r)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// errText is what a page shows for a failed read.
func errText(err error) string {
	if errors.Is(err, context.Canceled) {
		return "request canceled"
	}
	return err.Error()
}
