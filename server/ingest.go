package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/parleyhq/parley/idempotency"
	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/internal/authtoken"
	"github.com/parleyhq/parley/spool"
)

// handleIngest is POST /events: a JSON array, one object, or NDJSON of
// events that each carry sender_id. All or nothing: a bad event fails the
// request with 400 naming its index or line, and nothing of it is
// published. 202 means every event is durably accepted.
//
// With an Idempotency-Key header, the key and the 202 are recorded with
// the events (atomically, in the spool), and a retry of the request within
// the idempotency window gets that 202 again (with Idempotent-Replayed:
// true) and accepts nothing: a client whose response was lost, or whose
// parley crashed, can retry without duplicating the batch. The same key
// with another body gets 422. Without a key, a retry is a new batch.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.authorized(r) {
		s.metrics.rejected.WithLabelValues("unauthorized").Inc()
		writeError(w, http.StatusUnauthorized, 40101, "missing or wrong auth token (pass ?token= or an Authorization: Bearer header)")
		return
	}
	key, err := idempotency.FromRequest(r)
	if err != nil {
		s.metrics.rejected.WithLabelValues("bad_idempotency_key").Inc()
		writeError(w, http.StatusBadRequest, 40002, err.Error()+" (a key is 1 to 255 printable ASCII characters, sent once)")
		return
	}
	var ip IdempotentPublisher
	if key != "" {
		var ok bool
		if ip, ok = s.opts.Publisher.(IdempotentPublisher); !ok {
			writeError(w, http.StatusNotImplemented, 50101, idempotency.Header+" is not supported by this server's publisher; send the request without it")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.metrics.rejected.WithLabelValues("too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, 41301, fmt.Sprintf("request body larger than %d bytes; split it into several requests", s.opts.MaxBodyBytes))
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.metrics.rejected.WithLabelValues("timeout").Inc()
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, 40801, fmt.Sprintf("request body not received within %s; nothing was accepted", s.opts.BodyTimeout))
			return
		}
		writeError(w, http.StatusBadRequest, 40001, "reading the request body: "+err.Error())
		return
	}
	var fp [32]byte
	if key != "" {
		fp = idempotency.Fingerprint(r.Method, r.URL.Path, body)
		unlock := s.keys.Lock(key)
		defer unlock()
		if rec, ok := ip.LookupIdempotent(key); ok {
			s.replay(w, rec, fp)
			return
		}
	}
	evs, err := ingest.DecodeBody(body, "")
	if err == nil && s.opts.CanonicalEvents {
		evs, err = ingest.CanonicalAll(evs)
	}
	if err != nil {
		s.metrics.rejected.WithLabelValues("invalid").Inc()
		resp := apiError{ErrorCode: 42201, Message: "invalid events, nothing was accepted: " + err.Error()}
		var le *ingest.LineError
		var ie *ingest.IndexError
		switch {
		case errors.As(err, &le):
			resp.Line = le.Line
		case errors.As(err, &ie):
			resp.Index = &ie.Index
		}
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	// The request's context: a client that gives up gets no answer anyway,
	// and the spool either has the events or not; either way no loss (and
	// with a key, a retry finds out which).
	if key != "" {
		body, _ := json.Marshal(map[string]int{"accepted": len(evs)})
		out := idempotency.Outcome{Fingerprint: fp, Status: http.StatusAccepted, Body: append(body, '\n'), Created: time.Now()}
		rec, replayed, err := ip.PublishIdempotent(r.Context(), key, out, evs...)
		if err != nil {
			s.publishFailed(w, r.Context(), err)
			return
		}
		if replayed {
			s.replay(w, rec, fp)
			return
		}
		s.metrics.received.WithLabelValues("events").Add(float64(len(evs)))
		s.metrics.acceptDelay.Observe(time.Since(start).Seconds())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(out.Status)
		_, _ = w.Write(out.Body)
		return
	}
	if err := s.opts.Publisher.Publish(r.Context(), evs...); err != nil {
		s.publishFailed(w, r.Context(), err)
		return
	}
	s.metrics.received.WithLabelValues("events").Add(float64(len(evs)))
	s.metrics.acceptDelay.Observe(time.Since(start).Seconds())
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(evs)})
}

// replay answers a request whose Idempotency-Key was recorded: the first
// outcome again if it is the same request, 422 if the key was used for
// another.
func (s *Server) replay(w http.ResponseWriter, rec idempotency.Outcome, fp [32]byte) {
	if err := rec.Check(fp); err != nil {
		s.metrics.rejected.WithLabelValues("key_reused").Inc()
		writeError(w, http.StatusUnprocessableEntity, 42202, err.Error()+"; nothing was accepted (use a new key for a new batch)")
		return
	}
	s.metrics.replayed.Inc()
	rec.Replay(w)
}

func (s *Server) publishFailed(w http.ResponseWriter, ctx context.Context, err error) {
	if wait, full := spool.RetryAfter(err); full {
		s.metrics.rejected.WithLabelValues("full").Inc()
		secs := int(math.Ceil(wait.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusServiceUnavailable, 50301, "parley cannot accept more events right now ("+err.Error()+"); nothing of this request was accepted, retry later")
		return
	}
	if errors.Is(err, spool.ErrTooLarge) {
		s.metrics.rejected.WithLabelValues("too_large").Inc()
		writeError(w, http.StatusRequestEntityTooLarge, 41302, "events not accepted: "+err.Error())
		return
	}
	s.metrics.rejected.WithLabelValues("error").Inc()
	s.log.ErrorContext(ctx, "accepting events failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, 50302, "events not accepted: "+err.Error())
}

// authorized checks Rasa's ?token= or a bearer token (any case) against
// AuthToken.
func (s *Server) authorized(r *http.Request) bool { return authtoken.Check(r, s.opts.AuthToken) }
