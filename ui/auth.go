package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cookieName is the session cookie; it holds "expiry|subject" and an
// HMAC of it under a key made at start-up (a restart logs everyone out).
const cookieName = "parley_ui"

// sessionTTL is how long a login lasts.
const sessionTTL = 12 * time.Hour

// Failed logins are limited per remote address: maxFailures a minute.
const maxFailures = 10

type sessions struct {
	key         []byte
	token       string
	checkClient func(id, secret string) bool

	mu       sync.Mutex
	failures map[string][]time.Time
}

func newSessions(token string, checkClient func(id, secret string) bool) (*sessions, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &sessions{key: key, token: token, checkClient: checkClient, failures: map[string][]time.Time{}}, nil
}

// enabled reports whether logins are configured; without, the UI answers
// loopback callers only, like the consumer API without clients.
func (s *sessions) enabled() bool { return s.token != "" || s.checkClient != nil }

func (s *sessions) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *sessions) issue(w http.ResponseWriter, r *http.Request, subject string, now time.Time) {
	payload := strconv.FormatInt(now.Add(sessionTTL).Unix(), 10) + "|" + subject
	v := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + s.mac(payload)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: v, Path: "/ui/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// subject returns who the request's session belongs to, or "".
func (s *sessions) subject(r *http.Request, now time.Time) string {
	if h := r.Header.Get("Authorization"); s.token != "" && strings.HasPrefix(h, "Bearer ") {
		// Scripts and screens may send --auth-token as a bearer token.
		if subtle.ConstantTimeCompare([]byte(strings.TrimPrefix(h, "Bearer ")), []byte(s.token)) == 1 {
			return subjectToken
		}
		return ""
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	enc, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return ""
	}
	payload := string(raw)
	if !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return ""
	}
	exp, subject, ok := strings.Cut(payload, "|")
	n, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || now.Unix() >= n {
		return ""
	}
	return subject
}

// Session subjects: the operator's token, or a consumer API client.
const (
	subjectToken  = "auth-token"
	subjectClient = "client "
)

// login checks a login form: the --auth-token, or a consumer API client's
// id and secret. It returns the session's subject.
func (s *sessions) login(r *http.Request) (string, bool) {
	token, id, secret := r.PostFormValue("token"), r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	switch {
	case token != "" && s.token != "":
		if subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) == 1 {
			return subjectToken, true
		}
	case id != "" && s.checkClient != nil:
		if s.checkClient(id, secret) {
			return subjectClient + id, true
		}
	}
	return "", false
}

// tooManyFailures reports whether addr failed maxFailures logins in the
// last minute; failed records one more.
func (s *sessions) tooManyFailures(addr string, failed bool, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	recent := s.failures[addr][:0]
	for _, t := range s.failures[addr] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	if failed {
		recent = append(recent, now)
	}
	if len(recent) == 0 {
		delete(s.failures, addr)
	} else {
		s.failures[addr] = recent
	}
	if len(s.failures) > 10000 {
		clear(s.failures) // bound the memory an address scan can take
	}
	return len(recent) >= maxFailures
}

// sameOrigin reports whether a state-changing request comes from a page
// of this origin (the SameSite cookie already keeps other sites' requests
// unauthenticated; this also covers the login form itself).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser's cross-site form post
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// safeNext keeps a post-login redirect inside the UI.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

// fromLoopback reports whether the request comes from this host: a
// loopback peer and no proxy header naming another address (as the
// consumer API decides in open mode).
func fromLoopback(r *http.Request) bool {
	if r.RemoteAddr != "" && r.RemoteAddr != "@" && !isLoopback(r.RemoteAddr) {
		return false
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
