package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/internal/authtoken"
)

// HandlerOptions configure the conversation API. Zero values take the
// documented defaults.
type HandlerOptions struct {
	// Store keeps the conversations. Required.
	Store Store
	// Publisher receives the events each write adds (the spool in `parley
	// serve`). Nil stores without publishing.
	Publisher Publisher
	// AuthToken, if set, is required on every endpoint as ?token= (Rasa's
	// --auth-token) or an "Authorization: Bearer" header.
	AuthToken string
	// MaxBodyBytes limits request bodies (default 10 MiB); larger ones get
	// 413.
	MaxBodyBytes int64
	// Version is the "version" of error bodies (default "dev"), where Rasa
	// puts its own version.
	Version string
	// Logger receives error logs (default slog.Default()).
	Logger *slog.Logger
	// Registerer, if set, gets the parley_tracker_events_total counter.
	Registerer prometheus.Registerer
	// Now is the clock for filled-in timestamps (default time.Now).
	Now func() time.Time
	// Domain, if set, is the Rasa domain whose slots GET tracker lists (as
	// Rasa does: every domain slot, unset ones at their initial value, and
	// slot events for other names ignored). Nil: no domain, every slot an
	// event sets is listed, and Rasa's default session_config.
	Domain *Domain
	// ModelID and AssistantID, if set, go into the metadata of every event
	// a POST appends (session start included), as Rasa's tracker.update
	// adds its loaded model's id and the config's assistant_id. Default
	// unset: Rasa with a model always adds model_id, so events differ there.
	ModelID, AssistantID string
	// RasaAppend makes POST store and publish every posted event, repeats
	// included, as Rasa does. Default false: events identical to stored
	// ones are skipped, so a retried POST adds nothing twice.
	RasaAppend bool
	// RetryAfter reads the wait a publish error suggests, for the
	// Retry-After header of the 503 it causes (pass spool.RetryAfter).
	// Default: none, so a 503 suggests 1s.
	RetryAfter func(error) (time.Duration, bool)
}

// Handler serves Rasa's conversation tracker API:
//
//	GET  /conversations/{id}/tracker         ?include_events=&until=
//	POST /conversations/{id}/tracker/events  ?include_events=
//	PUT  /conversations/{id}/tracker/events  ?include_events=
//
// with Rasa's paths (ids may contain "/"), bodies, tracker JSON, status
// codes and error bodies. Every write publishes exactly the events it
// adds, each once; see ServeHTTP.
type Handler struct {
	store   Store
	pub     Publisher
	token   string
	max     int64
	version string
	log     *slog.Logger
	now     func() time.Time
	retry   func(error) (time.Duration, bool)
	events  *prometheus.CounterVec

	domain               *Domain
	modelID, assistantID string
	rasaAppend           bool
	clock                *clock
	keys                 idempotency.Locks // in-process order of one Idempotency-Key's requests
}

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 10 << 20

// NewHandler returns the API handler.
func NewHandler(o HandlerOptions) (*Handler, error) {
	if o.Store == nil {
		return nil, errors.New("tracker: NewHandler needs a Store")
	}
	h := &Handler{store: o.Store, pub: o.Publisher, token: o.AuthToken, max: o.MaxBodyBytes, version: o.Version, log: o.Logger, now: o.Now, retry: o.RetryAfter}
	if h.max <= 0 {
		h.max = DefaultMaxBodyBytes
	}
	if h.version == "" {
		h.version = "dev"
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.domain, h.modelID, h.assistantID, h.rasaAppend = o.Domain, o.ModelID, o.AssistantID, o.RasaAppend
	h.clock = &clock{now: h.now}
	h.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_tracker_events_total",
		Help: "Events posted to the conversation API, by outcome: stored (and published), duplicate (already stored, skipped).",
	}, []string{"outcome"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(h.events); err != nil {
			return nil, fmt.Errorf("tracker: register metrics: %w", err)
		}
	}
	return h, nil
}

// Register mounts the handler on mux under /conversations/, for
// server.Options.Mounts.
func (h *Handler) Register(mux *http.ServeMux) { mux.Handle("/conversations/", h) }

const (
	prefix       = "/conversations/"
	suffixEvents = "/tracker/events"
	suffixState  = "/tracker"
)

// route splits a path into the conversation id and the endpoint, as
// Rasa's <conversation_id:path> routes do.
func route(path string) (id, endpoint string) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return "", ""
	}
	if id, ok := strings.CutSuffix(rest, suffixEvents); ok && id != "" {
		return id, suffixEvents
	}
	if id, ok := strings.CutSuffix(rest, suffixState); ok && id != "" {
		return id, suffixState
	}
	return "", ""
}

// ServeHTTP routes a request. Unknown paths get 404 and wrong methods 405
// before authentication, as in Rasa.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, endpoint := route(r.URL.Path)
	var allow string
	var allowed bool
	switch endpoint {
	case suffixState:
		allow, allowed = "GET, HEAD", r.Method == http.MethodGet || r.Method == http.MethodHead
	case suffixEvents:
		allow, allowed = "POST, PUT", r.Method == http.MethodPost || r.Method == http.MethodPut
	default:
		h.writeError(w, r, errNotFound(r.URL.Path))
		return
	}
	if !allowed {
		w.Header().Set("Allow", allow)
		h.writeError(w, r, errMethod(r.Method))
		return
	}
	if !h.authorized(r) {
		h.writeError(w, r, errNotAuthenticated)
		return
	}
	if err := event.ValidText("conversation_id", id); err != nil {
		// %FF%FE in the path: stored, it would be unreadable to Rasa.
		h.writeError(w, r, errBadRequest(fmt.Sprintf("The conversation id (path segment %q) %s.", url.PathEscape(id), err.(*event.FieldError).Msg), event.NullValue(), ""))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.getTracker(w, r, id)
	case http.MethodPost:
		h.writeEvents(w, r, id, false)
	case http.MethodPut:
		h.writeEvents(w, r, id, true)
	}
}

// authorized is Rasa's token check: ?token=<token> (parley also takes an
// "Authorization: Bearer <token>" header, any case, as its ingest endpoint
// does).
func (h *Handler) authorized(r *http.Request) bool { return authtoken.Check(r, h.token) }

// verbosity reads include_events (default AFTER_RESTART).
func verbosity(r *http.Request) (Verbosity, *apiError) {
	q := r.URL.Query()
	if !q.Has("include_events") {
		return VerbosityAfterRestart, nil
	}
	v, ok := ParseVerbosity(q.Get("include_events"))
	if !ok {
		return 0, errInvalidVerbosity
	}
	return v, nil
}

// getTracker is GET /conversations/{id}/tracker: the tracker of every
// session, each stored event as Rasa's event class loads it. For a
// conversation without events it is the tracker Rasa's
// fetch_full_tracker_with_initial_session makes, with a session start
// that is not saved.
func (h *Handler) getTracker(w http.ResponseWriter, r *http.Request, id string) {
	v, aerr := verbosity(r)
	if aerr != nil {
		h.writeError(w, r, aerr)
		return
	}
	evs, err := h.store.Retrieve(r.Context(), id)
	if err != nil {
		h.writeError(w, r, h.storeError(err))
		return
	}
	if len(evs) == 0 {
		evs = h.sessionStart()
	} else {
		evs = h.canonicalAll(evs)
	}
	t := NewTrackerFor(id, evs, h.domain)
	// until: a number, or ignored (Rasa's float_arg).
	if s := r.URL.Query().Get("until"); s != "" {
		if until, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			t = t.Until(until)
		}
	}
	h.writeState(w, r, t, v)
}

// writeState answers with the tracker state.
func (h *Handler) writeState(w http.ResponseWriter, r *http.Request, t *Tracker, v Verbosity) {
	if err := t.Err(); err != nil {
		h.writeError(w, r, errConversation(fmt.Errorf("conversation %q: %w (its events are stored and can be exported)", t.SenderID(), err)))
		return
	}
	writeJSON(w, http.StatusOK, t.AppendStateJSON(make([]byte, 0, 1024), v))
}

// writeEvents is POST (append) and PUT (replace) of
// /conversations/{id}/tracker/events.
//
// Events are stored and published as Rasa's classes re-serialize them
// (event.Canonical). POST is Rasa's update_conversation_with_events: on a
// conversation without events, unless the posted events begin with one,
// a session start comes first; every appended event gets the configured
// model_id and assistant_id. PUT is DialogueStateTracker.from_dict: the
// list as given, no session start, no model ids.
//
// Durability: the events a write adds are published before the store
// commits them, inside the conversation's lock. The publisher (the spool)
// holds them durably when Publish returns, so:
//   - publish fails: nothing is stored and the client gets an error; its
//     retry finds the events still new and publishes them. Nothing lost.
//   - publish succeeds, the store write fails (or the process dies): the
//     client gets an error (or none); its retry finds the events still new
//     and publishes them again. A duplicate, never a loss: at-least-once.
//
// Storing first would lose events: a retry after a failed publish finds
// them stored, so not new, and never publishes them.
//
// With an Idempotency-Key, the answer is recorded in the store's
// transaction that saves the events, so a retry (on any node sharing the
// store) gets the first answer and changes nothing.
func (h *Handler) writeEvents(w http.ResponseWriter, r *http.Request, id string, replace bool) {
	key, err := idempotency.FromRequest(r)
	if err != nil {
		h.writeError(w, r, errBadRequest(err.Error(), event.ObjectValue(
			event.Member{Key: "parameter", Value: event.StringValue(idempotency.Header)},
			event.Member{Key: "in", Value: event.StringValue("header")},
		), ""))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.max))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.writeError(w, r, errTooLarge(h.max))
			return
		}
		h.writeError(w, r, errBadRequest("Could not read the request body: "+err.Error(), event.Value{}, ""))
		return
	}
	var fp [32]byte
	if key != "" {
		defer h.keys.Lock(id + "\x00" + key)()
		fp = idempotency.Fingerprint(r.Method, r.URL.Path+"?"+r.URL.RawQuery, body)
	}
	doc, err := event.ParseValue(body)
	if err != nil {
		h.writeError(w, r, errBadRequest("Failed when parsing body as json: "+err.Error(), event.Value{}, ""))
		return
	}
	evs, errs := decodeEvents(doc, id, h.clock.seconds, replace)
	if errs != nil {
		h.writeError(w, r, errEvents(errs))
		return
	}
	if len(evs) == 0 && !replace {
		h.writeError(w, r, errNoEvents)
		return
	}
	v, aerr := verbosity(r)
	if aerr != nil {
		h.writeError(w, r, aerr)
		return
	}
	if !replace {
		for i := range evs {
			evs[i] = h.withModel(evs[i])
		}
	}

	var (
		answer      []byte
		replay      *idempotency.Outcome
		added, dups int
	)
	err = h.store.UpdateKeyed(r.Context(), id, key, func(current []event.Event, recorded *idempotency.Outcome) (Change, error) {
		if recorded != nil {
			if err := recorded.Check(fp); err != nil {
				return Change{}, err
			}
			replay = recorded
			return Change{}, nil
		}
		current = h.canonicalAll(current)
		var ch Change
		var result, publish []event.Event
		if replace {
			publish = newEvents(current, evs)
			added, dups = len(publish), len(evs)-len(publish)
			ch = Change{Replace: true, Events: evs}
			result = evs
		} else {
			posted := evs
			if !h.rasaAppend {
				posted = newEvents(current, evs)
			}
			added, dups = len(posted), len(evs)-len(posted)
			if len(current) == 0 && !beginsWithSessionStart(evs) {
				posted = append(h.sessionStart(), posted...)
			}
			publish = posted
			ch = Change{Events: posted}
			// Rasa answers POST with the tracker its SQL store's retrieve
			// loads (the latest session) plus the new events.
			result = append(LatestSession(current), posted...)
		}
		t := NewTrackerFor(id, result, h.domain)
		if err := t.Err(); err != nil {
			return Change{}, err
		}
		if len(publish) > 0 && h.pub != nil {
			if err := h.pub.Publish(r.Context(), forPublishing(id, publish)...); err != nil {
				return Change{}, &publishError{err}
			}
		}
		answer = t.AppendStateJSON(make([]byte, 0, 1024), v)
		if key != "" {
			ch.Record = &Record{Key: key, Outcome: idempotency.Outcome{Fingerprint: fp, Status: http.StatusOK, Body: answer, Created: time.Now()}}
		}
		return ch, nil
	})
	if err != nil {
		h.writeError(w, r, h.storeError(err))
		return
	}
	if replay != nil {
		replay.Replay(w)
		return
	}
	h.events.WithLabelValues("stored").Add(float64(added))
	h.events.WithLabelValues("duplicate").Add(float64(dups))
	writeJSON(w, http.StatusOK, answer)
}

// publishError marks a failure to publish, as opposed to a store failure.
type publishError struct{ err error }

func (e *publishError) Error() string { return "publish: " + e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }

func (h *Handler) storeError(err error) *apiError {
	var pe *publishError
	switch {
	case errors.As(err, &pe) && errors.Is(err, broker.ErrPermanent):
		// Retrying cannot help (an event larger than the spool takes).
		return errBadRequest("The events cannot be published, so none were stored. Error: "+pe.err.Error(), event.Value{}, "")
	case errors.As(err, &pe):
		e := &apiError{
			status: http.StatusServiceUnavailable, reason: "ServiceUnavailable",
			message: "Could not publish the events, so none were stored; retry the request. Error: " + pe.err.Error(),
		}
		e.retryAfter = 1
		if h.retry != nil {
			if d, ok := h.retry(pe.err); ok {
				e.retryAfter = max(1, int(math.Ceil(d.Seconds())))
			}
		}
		return e
	case errors.Is(err, idempotency.ErrMismatch):
		return &apiError{status: http.StatusUnprocessableEntity, reason: "UnprocessableEntity",
			message: err.Error() + "; use a new key for a new request"}
	case errors.Is(err, ErrTooComplex):
		return errConversation(err)
	case errors.Is(err, ErrInvalidID):
		return errBadRequest("Invalid conversation id: "+err.Error(), event.ObjectValue(
			event.Member{Key: "parameter", Value: event.StringValue("conversation_id")},
			event.Member{Key: "in", Value: event.StringValue("path")},
		), "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusServiceUnavailable, reason: "ServiceUnavailable", message: "The request was cancelled: " + err.Error(), retryAfter: 1}
	}
	return errConversation(err)
}
