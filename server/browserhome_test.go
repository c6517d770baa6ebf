package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// GET / sends browsers to the web UI and keeps Rasa's text for others.
func TestRootRedirectsBrowsersOnly(t *testing.T) {
	s, _ := newTestServer(t, Options{BrowserHome: "/ui/"})
	for _, tc := range []struct {
		accept   string
		redirect bool
	}{
		{"", false},
		{"*/*", false}, // curl
		{"application/json", false},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true}, // a browser
		{"TEXT/HTML; q=0.5", true},
		{"text/html;q=0", false},
		{"text/plain, text/html ; q=0.0", false},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		got := w.Code == http.StatusSeeOther && w.Header().Get("Location") == "/ui/"
		if got != tc.redirect {
			t.Errorf("Accept %q: status %d, Location %q; redirect wanted: %v", tc.accept, w.Code, w.Header().Get("Location"), tc.redirect)
		}
		if !tc.redirect && (w.Code != 200 || w.Header().Get("Content-Type") != "text/plain; charset=utf-8") {
			t.Errorf("Accept %q: %d %s, want Rasa's text", tc.accept, w.Code, w.Header().Get("Content-Type"))
		}
	}
	// Without a UI, browsers get the text too.
	s, _ = newTestServer(t, Options{})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("no BrowserHome: status %d", w.Code)
	}
}
