package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	if s.opts.BrowserHome != "" && acceptsHTML(r) {
		http.Redirect(w, r, s.opts.BrowserHome, http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hello from parley: %s\n", s.opts.Version)
}

// acceptsHTML reports whether the request's Accept header names text/html
// (a browser's does; curl's */* and health checkers' do not).
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						q = f
					}
				}
			}
			return q > 0
		}
	}
	return false
}

// handleVersion answers like Rasa's GET /version, so clients that read
// "version" keep working.
func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"version":                    s.opts.Version,
		"minimum_compatible_version": s.opts.Version,
		"server":                     "parley",
	})
}

// handleHealth is liveness: the process answers.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// handleReady is readiness: every check (brokers, tracker store, spool)
// passes within a few seconds.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	results := make([]checkResult, len(s.opts.Checks))
	var wg sync.WaitGroup
	for i, c := range s.opts.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = checkResult{Name: c.Name, Status: "ok"}
			if err := c.Probe(ctx); err != nil {
				results[i].Status, results[i].Error = "failing", err.Error()
			}
		}()
	}
	wg.Wait()
	status, code := "ready", http.StatusOK
	for _, r := range results {
		if r.Status != "ok" {
			status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}
