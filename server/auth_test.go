package server

import (
	"net/http"
	"testing"
)

// TestAuthTokenCoverage pins which endpoints --auth-token protects (issue
// 14): those that take or reveal conversation data; /health, /ready,
// /metrics, /version and / stay open for load balancers and Prometheus,
// as serve --help and docs/security.md say.
func TestAuthTokenCoverage(t *testing.T) {
	s, _ := newTestServer(t, Options{AuthToken: "s3"})
	for _, c := range []struct {
		method, path string
		protected    bool
	}{
		{"POST", "/events", true},
		{"GET", "/health", false},
		{"GET", "/ready", false},
		{"GET", "/metrics", false},
		{"GET", "/version", false},
		{"GET", "/", false},
	} {
		resp, _ := do(t, s, c.method, c.path, []byte(`{"sender_id":"s","event":"action","name":"a","timestamp":1}`))
		if got := resp.StatusCode == http.StatusUnauthorized; got != c.protected {
			t.Errorf("%s %s without a token: %d, protected %v", c.method, c.path, resp.StatusCode, c.protected)
		}
	}
}
