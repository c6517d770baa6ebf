package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/spool"
)

// handleIngest is POST /events: a JSON array, one object, or NDJSON of
// events that each carry sender_id. All or nothing: a bad event fails the
// request with 400 naming its index or line, and nothing of it is
// published. 202 means every event is durably accepted.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.authorized(r) {
		s.metrics.rejected.WithLabelValues("unauthorized").Inc()
		writeError(w, http.StatusUnauthorized, 40101, "missing or wrong auth token (pass ?token= or an Authorization: Bearer header)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.metrics.rejected.WithLabelValues("too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, 41301, fmt.Sprintf("request body larger than %d bytes; split it into several requests", s.opts.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, 40001, "reading the request body: "+err.Error())
		return
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
	// and the spool either has the events or not; either way no loss.
	if err := s.opts.Publisher.Publish(r.Context(), evs...); err != nil {
		s.publishFailed(w, r.Context(), err)
		return
	}
	s.metrics.received.WithLabelValues("events").Add(float64(len(evs)))
	s.metrics.acceptDelay.Observe(time.Since(start).Seconds())
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(evs)})
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

// authorized checks Rasa's ?token= or a bearer token against AuthToken.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.AuthToken == "" {
		return true
	}
	tok := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); tok == "" && strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimPrefix(h, "Bearer ")
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.AuthToken)) == 1
}
