package authtoken

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Bearer returns the token of an "Authorization: Bearer <token>" header.
// The scheme is case-insensitive (RFC 9110 section 11.1), as the consumer
// API's is.
func Bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Check reports whether r carries want as ?token= (Rasa's --auth-token) or
// as a bearer token. An empty want lets every request through.
func Check(r *http.Request, want string) bool {
	if want == "" {
		return true
	}
	got := r.URL.Query().Get("token")
	if got == "" {
		got, _ = Bearer(r.Header.Get("Authorization"))
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
