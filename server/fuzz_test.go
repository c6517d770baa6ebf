package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

// FuzzIngest throws arbitrary bodies and targets at the server: it must
// never panic, and must answer 202 only with every event published.
func FuzzIngest(f *testing.F) {
	f.Add("POST", "/events", fixtures.Events()[0])
	f.Add("POST", "/events?token=x", []byte(`[{"sender_id":"a","event":"bot","timestamp":1}]`))
	f.Add("GET", "/ready", []byte(nil))
	f.Add("POST", "/events", []byte("[\n"))
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		s, rec := newTestServer(t, Options{MaxBodyBytes: 1 << 16})
		if len(target) == 0 || target[0] != '/' {
			target = "/" + target
		}
		req, err := newRequest(method, target, body)
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code == 202 && len(rec.Events()) == 0 {
			t.Fatalf("202 without events for %q", body)
		}
		if w.Code != 202 && len(rec.Events()) != 0 {
			t.Fatalf("%d with %d events published", w.Code, len(rec.Events()))
		}
	})
}

func newRequest(method, target string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, "http://parley.test"+target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.RemoteAddr = "127.0.0.1:1234"
	return req, nil
}
