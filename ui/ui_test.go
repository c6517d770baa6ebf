package ui

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/spool"
	"github.com/parleyhq/parley/tracker"
)

type fakeDelivery struct{ st spool.Status }

func (f fakeDelivery) Status() spool.Status { return f.st }

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, ...event.Event) error { return nil }

func newUI(t *testing.T, o Options) (*Handler, *tracker.MemoryStore) {
	t.Helper()
	store := tracker.NewMemoryStore()
	if o.Conversations == nil {
		o.Conversations = TrackerConversations(store)
	}
	if o.Delivery == nil {
		o.Delivery = fakeDelivery{spool.Status{Brokers: []spool.BrokerStatus{{Name: "kafka", Pending: 3}}}}
	}
	o.Logger = slog.New(slog.DiscardHandler)
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, store
}

func get(h http.Handler, target, remote string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", target, nil)
	req.RemoteAddr = remote
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func mustEvent(t *testing.T, js string) event.Event {
	t.Helper()
	ev, err := event.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestLoopbackOnlyWithoutLogin(t *testing.T) {
	h, _ := newUI(t, Options{})
	for _, tc := range []struct {
		remote string
		hdr    []string
		want   int
	}{
		{"127.0.0.1:4000", nil, 200},
		{"[::1]:4000", nil, 200},
		{"10.1.2.3:4000", nil, 403},
		{"127.0.0.1:4000", []string{"X-Forwarded-For", "203.0.113.9"}, 403},
		{"127.0.0.1:4000", []string{"Forwarded", "for=203.0.113.9"}, 403},
		{"127.0.0.1:4000", []string{"X-Real-IP", "203.0.113.9"}, 403},
	} {
		for _, path := range []string{"/ui/conversations", "/ui/delivery", "/ui/live/stream", "/ui/consumers?partial=1"} {
			if tc.want == 200 && strings.HasSuffix(path, "/stream") {
				continue // a stream does not end
			}
			if w := get(h, path, tc.remote, tc.hdr...); w.Code != tc.want {
				t.Errorf("%s from %s %v: %d, want %d", path, tc.remote, tc.hdr, w.Code, tc.want)
			}
		}
	}
	// No login page to use.
	if w := get(h, "/ui/login", "127.0.0.1:1"); w.Code != http.StatusSeeOther {
		t.Errorf("login page without logins: %d", w.Code)
	}
}

func postForm(h http.Handler, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "198.51.100.7:1234"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func sessionCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	t.Fatalf("no session cookie: %v", w.Header())
	return nil
}

func TestLogin(t *testing.T) {
	h, _ := newUI(t, Options{AuthToken: "s3cret", CheckClient: checkClient, Consumers: twoTenants})
	remote := "198.51.100.7:1234" // logins work from anywhere

	w := get(h, "/ui/delivery?x=1", remote)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/login?next=%2Fui%2Fdelivery%3Fx%3D1" {
		t.Fatalf("no session: %d %s", w.Code, w.Header().Get("Location"))
	}
	for _, p := range []string{"/ui/delivery?partial=1", "/ui/live/stream", "/ui/conversation/stream?id=a&after=0"} {
		if w := get(h, p, remote); w.Code != http.StatusUnauthorized {
			t.Errorf("%s without session: %d, want 401", p, w.Code)
		}
	}
	if w := get(h, "/ui/login", remote); w.Code != 200 || !strings.Contains(w.Body.String(), `name="token"`) || !strings.Contains(w.Body.String(), `name="client_id"`) {
		t.Errorf("login page: %d", w.Code)
	}

	if w := postForm(h, "/ui/login", url.Values{"token": {"wrong"}}); w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Errorf("wrong token: %d %v", w.Code, w.Result().Cookies())
	}
	if w := postForm(h, "/ui/login", url.Values{"token": {"s3cret"}}, "Sec-Fetch-Site", "cross-site"); w.Code != http.StatusForbidden {
		t.Errorf("cross-site login: %d", w.Code)
	}
	if w := postForm(h, "/ui/login", url.Values{"token": {"s3cret"}}, "Origin", "https://evil.example"); w.Code != http.StatusForbidden {
		t.Errorf("login from another origin: %d", w.Code)
	}
	w = postForm(h, "/ui/login", url.Values{"token": {"s3cret"}, "next": {"//evil.example/x"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/" {
		t.Errorf("open redirect: %d %s", w.Code, w.Header().Get("Location"))
	}
	c := sessionCookie(t, w)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || strings.Contains(c.Value, "s3cret") {
		t.Errorf("cookie: %+v", c)
	}
	if w := get(h, "/ui/delivery", remote, "Cookie", c.Name+"="+c.Value); w.Code != 200 {
		t.Errorf("with session: %d", w.Code)
	}
	// A tampered cookie: the subject changed, the MAC not.
	enc, sig, _ := strings.Cut(c.Value, ".")
	for _, v := range []string{enc + ".x" + sig[1:], "eHh4fGFkbWlu." + sig, c.Value + "x", ""} {
		if w := get(h, "/ui/delivery", remote, "Cookie", c.Name+"="+v); w.Code != http.StatusSeeOther {
			t.Errorf("tampered cookie %q: %d", v, w.Code)
		}
	}
	// An expired session.
	h.auth.issue(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), "x", time.Now())
	rec := httptest.NewRecorder()
	h.auth.issue(rec, httptest.NewRequest("GET", "/", nil), "old", time.Now().Add(-13*time.Hour))
	old := sessionCookie(t, rec)
	if w := get(h, "/ui/delivery", remote, "Cookie", old.Name+"="+old.Value); w.Code != http.StatusSeeOther {
		t.Errorf("expired session: %d", w.Code)
	}
	// Bearer token, for scripts.
	if w := get(h, "/ui/delivery?partial=1", remote, "Authorization", "Bearer s3cret"); w.Code != 200 {
		t.Errorf("bearer token: %d", w.Code)
	}
	if w := get(h, "/ui/delivery?partial=1", remote, "Authorization", "Bearer nope"); w.Code != 401 {
		t.Errorf("wrong bearer token: %d", w.Code)
	}
	// A consumer API client.
	w = postForm(h, "/ui/login", url.Values{"client_id": {"ops"}, "client_secret": {"client-pw"}, "next": {"/ui/consumers"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/consumers" {
		t.Fatalf("client login: %d %s", w.Code, w.Header().Get("Location"))
	}
	c = sessionCookie(t, w)
	// A client is a tenant: its own consumers, nothing else.
	for _, p := range []string{"/ui/conversations", "/ui/conversation?id=a", "/ui/live", "/ui/delivery", "/ui/deadletters?broker=kafka", "/ui/live/stream"} {
		if w := get(h, p, remote, "Cookie", c.Name+"="+c.Value); w.Code != http.StatusForbidden {
			t.Errorf("client session on %s: %d, want 403", p, w.Code)
		}
	}
	w = get(h, "/ui/consumers", remote, "Cookie", c.Name+"="+c.Value)
	if body := w.Body.String(); w.Code != 200 || !strings.Contains(body, "client ops") || !strings.Contains(body, "mine") || strings.Contains(body, "theirs") || strings.Contains(body, "other-group") || strings.Contains(body, `href="/ui/conversations"`) {
		t.Errorf("client's consumers page: %d\n%s", w.Code, body)
	}
	w = get(h, "/ui/consumers", remote, "Authorization", "Bearer s3cret")
	if body := w.Body.String(); !strings.Contains(body, "mine") || !strings.Contains(body, "theirs") {
		t.Errorf("operator's consumers page misses instances:\n%s", body)
	}
	// Logout clears the cookie.
	w = postForm(h, "/ui/logout", nil)
	if c := sessionCookie(t, w); c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("logout cookie: %+v", c)
	}
}

func checkClient(id, secret string) bool { return id == "ops" && secret == "client-pw" }

type fakeConsumers []consumer.GroupStatus

func (f fakeConsumers) Snapshot(context.Context) []consumer.GroupStatus { return f }

var twoTenants = fakeConsumers{
	{Group: "shared", Instances: []consumer.InstanceStatus{{Name: "mine", Owner: "ops"}, {Name: "theirs", Owner: "other"}}},
	{Group: "other-group", Instances: []consumer.InstanceStatus{{Name: "x", Owner: "other"}}},
}

// With clients but no --auth-token, this host is the operator without a
// login, and other hosts log in as clients.
func TestClientsWithoutToken(t *testing.T) {
	h, _ := newUI(t, Options{CheckClient: checkClient, Consumers: twoTenants})
	if w := get(h, "/ui/conversations", "127.0.0.1:1"); w.Code != 200 {
		t.Errorf("loopback: %d", w.Code)
	}
	if w := get(h, "/ui/conversations", "10.0.0.9:1"); w.Code != http.StatusSeeOther {
		t.Errorf("remote without session: %d", w.Code)
	}
	if w := postForm(h, "/ui/login", url.Values{"token": {""}, "client_id": {"ops"}, "client_secret": {"wrong"}}); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", w.Code)
	}
	if w := postForm(h, "/ui/login", url.Values{"token": {"anything"}}); w.Code != http.StatusUnauthorized {
		t.Errorf("a token without --auth-token: %d", w.Code)
	}
}

func TestLoginRateLimit(t *testing.T) {
	h, _ := newUI(t, Options{AuthToken: "s3cret"})
	for range maxFailures {
		postForm(h, "/ui/login", url.Values{"token": {"guess"}})
	}
	if w := postForm(h, "/ui/login", url.Values{"token": {"s3cret"}}); w.Code != http.StatusTooManyRequests || len(w.Result().Cookies()) != 0 {
		t.Errorf("after %d failures: %d", maxFailures, w.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	h, _ := newUI(t, Options{})
	for _, p := range []string{"/ui/conversations", "/ui/assets/ui.js", "/ui/assets/ui.css", "/ui/nope", "/ui/login"} {
		w := get(h, p, "127.0.0.1:1")
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", p, w.Header())
		}
	}
	if w := get(h, "/ui/assets/ui.js", "127.0.0.1:1"); w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
		t.Errorf("ui.js: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if w := get(h, "/ui/assets/../templates/layout.html", "127.0.0.1:1"); w.Code == 200 && strings.Contains(w.Body.String(), "{{") {
		t.Error("templates served as assets")
	}
}

// Everything user text can hold comes out escaped, on pages and in the
// fragments streamed to them.
func TestEscaping(t *testing.T) {
	h, store := newUI(t, Options{})
	payload := `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	id := `a"><svg onload=alert(3)>`
	err := tracker.Append(context.Background(), store, id,
		mustEvent(t, `{"event": "user", "timestamp": 1, "text": "`+strings.ReplaceAll(payload, `"`, `\"`)+`", "parse_data": {"intent": {"name": "<b>i</b>", "confidence": 0.5}, "entities": [{"entity": "<e>", "value": "<v>"}]}}`),
		mustEvent(t, `{"event": "slot", "timestamp": 2, "name": "<s>", "value": "</dd><script>x</script>"}`),
		mustEvent(t, `{"event": "bot", "timestamp": 3, "text": "\u202e\u0000</li>"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/ui/conversations", "/ui/conversations?q=" + url.QueryEscape("<script>"), "/ui/conversation?id=" + url.QueryEscape(id)} {
		body := get(h, p, "127.0.0.1:1").Body.String()
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "<b>i</b>", "<e>", "<v>", "<s>", "</dd><script>", "</li>\n</ol>x"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q unescaped", p, bad)
			}
		}
		if !strings.Contains(body, "&lt;svg onload=alert(3)&gt;") {
			t.Errorf("%s does not show the id escaped", p)
		}
	}
	items, err := h.fragment("conversation", "items", transcript([]event.Event{mustEvent(t, `{"event": "bot", "text": "<script>x</script>"}`)}, 0))
	if err != nil || strings.Contains(items, "<script>") || !strings.Contains(items, "&lt;script&gt;") {
		t.Errorf("fragment: %v %s", err, items)
	}
}

// sseReader reads events of a Server-Sent Events response.
type sseReader struct{ r *bufio.Reader }

func (s sseReader) next(t *testing.T) (name, data string) {
	t.Helper()
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && (name != "" || lines != nil):
			return name, strings.Join(lines, "\n")
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			lines = append(lines, strings.TrimPrefix(line, "data: "))
		}
	}
}

func TestTranscriptStream(t *testing.T) {
	live := NewLive(0)
	h, store := newUI(t, Options{Live: live, PollInterval: time.Hour})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()
	pub := live.Tap(nopPublisher{}, "conversations")
	write := func(id string, evs ...event.Event) {
		t.Helper()
		if err := tracker.Append(ctx, store, id, evs...); err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			evs[i].SenderID = id
		}
		if err := pub.Publish(ctx, evs...); err != nil {
			t.Fatal(err)
		}
	}
	write("c", mustEvent(t, `{"event": "user", "timestamp": 1, "text": "one"}`))
	resp, err := http.Get(srv.URL + "/ui/conversation/stream?id=c&after=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	rd := sseReader{bufio.NewReader(resp.Body)}
	// Another conversation's write sends nothing; this one's does, at
	// once (the poll interval is an hour).
	write("other", mustEvent(t, `{"event": "user", "timestamp": 2, "text": "elsewhere"}`))
	write("c", mustEvent(t, `{"event": "bot", "timestamp": 3, "text": "two\nlines"}`), mustEvent(t, `{"event": "slot", "timestamp": 4, "name": "city", "value": "Rome"}`))
	name, data := rd.next(t)
	if name != "append" || !strings.Contains(data, `data-index="1"`) || !strings.Contains(data, "two\nlines") || !strings.Contains(data, "slot city") || strings.Contains(data, "elsewhere") {
		t.Fatalf("append: %s %q", name, data)
	}
	// A replaced (shorter) conversation reloads the page.
	if err := tracker.Replace(ctx, store, "c", []event.Event{mustEvent(t, `{"event": "user", "timestamp": 5, "text": "new"}`)}); err != nil {
		t.Fatal(err)
	}
	_ = pub.Publish(ctx, event.Event{SenderID: "c"})
	if name, _ := rd.next(t); name != "reset" {
		t.Fatalf("after replace: %s", name)
	}
	// Close ends open streams.
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); close(done) }()
	_ = h.Close(ctx)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the stream")
	}
}

func TestLiveKeepsTheLastEvents(t *testing.T) {
	live := NewLive(3)
	pub := live.Tap(nopPublisher{}, "events")
	big := `{"event": "bot", "text": "` + strings.Repeat("x", maxLiveEventBytes) + `"}`
	evs := []event.Event{mustEvent(t, `{"event": "user", "text": "a"}`), mustEvent(t, `{"event": "user", "text": "b"}`), mustEvent(t, `{"event": "user", "text": "c"}`), mustEvent(t, big)}
	for i := range evs {
		evs[i].SenderID = "s"
	}
	if err := pub.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	got := live.Since(0)
	if len(got) != 3 || got[0].Seq != 2 || got[2].Seq != 4 || live.Last() != 4 {
		t.Fatalf("kept %+v", got)
	}
	if !got[2].Large || got[2].JSON() != nil || got[2].Type != "bot" || got[2].Sender != "s" {
		t.Errorf("a large event is kept whole: %d bytes", len(got[2].JSON()))
	}
	if string(got[1].JSON()) != `{"sender_id": "s", "event": "user", "text": "c"}` {
		t.Errorf("kept event: %s", got[1].JSON())
	}
	if s := live.Since(3); len(s) != 1 || s[0].Seq != 4 {
		t.Errorf("Since(3): %+v", s)
	}
	// A publish that fails is not shown.
	failing := live.Tap(publisherFunc(func(context.Context, ...event.Event) error { return io.ErrClosedPipe }), "events")
	if err := failing.Publish(context.Background(), evs[0]); err == nil || live.Last() != 4 {
		t.Errorf("failed publish recorded: %v, last %d", err, live.Last())
	}
}

type publisherFunc func(context.Context, ...event.Event) error

func (f publisherFunc) Publish(ctx context.Context, evs ...event.Event) error { return f(ctx, evs...) }
