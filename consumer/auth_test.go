package consumer_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/auth"
	"github.com/parleyhq/parley/consumer/consumertest"
)

const signingKey = "0123456789abcdef0123456789abcdef-test"

// secured serves the API with two clients: analytics may read the events
// topic, crm only another topic.
func secured(t *testing.T, mutate func(*consumer.Config)) *consumertest.Env {
	return start(t, func(c *consumer.Config) {
		c.SigningKey = []byte(signingKey)
		c.Clients = []auth.Client{
			{ID: "analytics", SecretHash: cheapHash(t, "s3cret"), Topics: []string{topic}},
			{ID: "crm", SecretHash: cheapHash(t, "crm-secret"), Topics: []string{"crm_events"}},
		}
		if mutate != nil {
			mutate(c)
		}
	})
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
	Code        int    `json:"error_code"`
}

func requestToken(t *testing.T, api *consumertest.API, form url.Values, basic [2]string) (int, tokenResponse) {
	req, err := http.NewRequest("POST", api.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic[0] != "" {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, tr
}

func token(t *testing.T, api *consumertest.API, id, secret string) string {
	t.Helper()
	status, tr := requestToken(t, api, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, [2]string{})
	if status != 200 || tr.AccessToken == "" || tr.TokenType != "bearer" {
		t.Fatalf("token for %s: %d %+v", id, status, tr)
	}
	return tr.AccessToken
}

func TestTokenEndpoint(t *testing.T) {
	env := secured(t, nil)
	if env.Handler.Open() {
		t.Fatal("clients are configured, yet the API is open")
	}
	api := env.API
	cases := []struct {
		name   string
		form   url.Values
		basic  [2]string
		status int
		err    string
	}{
		{"form credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {"analytics"}, "client_secret": {"s3cret"}}, [2]string{}, 200, ""},
		{"basic credentials", url.Values{"grant_type": {"client_credentials"}, "scope": {topic}}, [2]string{"analytics", "s3cret"}, 200, ""},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"analytics"}, "client_secret": {"guess"}}, [2]string{}, 401, "invalid_client"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"mallory"}, "client_secret": {"s3cret"}}, [2]string{}, 401, "invalid_client"},
		{"no secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"analytics"}}, [2]string{}, 401, "invalid_client"},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {"analytics"}, "client_secret": {"s3cret"}}, [2]string{}, 400, "unsupported_grant_type"},
		{"scope outside the client's topics", url.Values{"grant_type": {"client_credentials"}, "scope": {"crm_events"}}, [2]string{"analytics", "s3cret"}, 400, "invalid_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, tr := requestToken(t, api, c.form, c.basic)
			if status != c.status || tr.Error != c.err {
				t.Fatalf("got %d %+v, want %d %q", status, tr, c.status, c.err)
			}
			if status == 200 && (tr.Scope != topic || tr.ExpiresIn != int64(consumer.DefaultTokenTTL/time.Second)) {
				t.Fatalf("token %+v", tr)
			}
		})
	}
	t.Run("JSON body", func(t *testing.T) {
		r := api.Do("POST", "/oauth2/token", nil, map[string]any{"grant_type": "client_credentials", "client_id": "crm", "client_secret": "crm-secret"})
		var tr tokenResponse
		if r.Status != 200 || json.Unmarshal(r.Body, &tr) != nil || tr.Scope != "crm_events" {
			t.Fatalf("got %s", r)
		}
	})
}

func TestTokensConfineClientsToTheirTopics(t *testing.T) {
	env := secured(t, nil)
	anon := consumertest.NewAPI(t, env.Server.URL)
	analytics := consumertest.NewAPI(t, env.Server.URL)
	analytics.Token = token(t, anon, "analytics", "s3cret")
	crm := consumertest.NewAPI(t, env.Server.URL)
	crm.Token = token(t, anon, "crm", "crm-secret")

	// 401 without a token, with a bad one, with an expired one.
	forge := func(exp time.Time, key string) string {
		s := auth.NewSigner([]byte(key), nil)
		tok, err := s.Sign(auth.Claims{Issuer: auth.Issuer, Audience: auth.Audience, Subject: "analytics", Expires: exp.Unix(), Topics: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tampered := []byte(analytics.Token)
	tampered[len(tampered)/2] ^= 1
	unauthorized := map[string]string{
		"no token":         "",
		"not a JWT":        "garbage",
		"tampered":         string(tampered),
		"expired":          forge(time.Now().Add(-time.Minute), signingKey),
		"another key":      forge(time.Now().Add(time.Hour), "another-key-another-key-another-key"),
		"alg none":         "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(analytics.Token, ".")[1] + ".",
		"Basic, not token": "",
	}
	for name, tok := range unauthorized {
		t.Run(name, func(t *testing.T) {
			hdr := map[string]string{"consumer-group": "g", "consumer-name": "c"}
			if tok != "" {
				hdr["Authorization"] = "Bearer " + tok
			}
			if name == "Basic, not token" {
				hdr["Authorization"] = "Basic YW5hbHl0aWNzOnMzY3JldA=="
			}
			for _, path := range []string{"/partitions", "/consumers/records"} {
				r := anon.Do("GET", path, hdr, nil)
				if r.Status != 401 || r.ErrorCode() != consumer.CodeUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("GET %s: %s", path, r)
				}
			}
			if name == "expired" {
				r := anon.Do("GET", "/partitions", hdr, nil)
				if !strings.Contains(string(r.Body), "expired") {
					t.Fatalf("expired token: %s", r)
				}
			}
		})
	}

	// The token implies its topic.
	r := analytics.Do("GET", "/partitions", nil, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"topic":"rasa_core_events"`) {
		t.Fatalf("analytics partitions: %s", r)
	}
	// 403 outside the token's topics.
	forbidden := []struct {
		method, path string
		body         any
	}{
		{"GET", "/partitions?topic=" + topic, nil},
		{"GET", "/partitions/0/offsets?topic=" + topic, nil},
		{"POST", "/consumers/subscription", map[string]any{"topics": []string{topic}}},
		{"POST", "/consumers/assignments", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}},
		{"POST", "/consumers/offsets", map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 1}}}},
		{"POST", "/consumers/committed/offsets", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}},
		{"POST", "/consumers/positions", map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 1}}}},
		{"POST", "/consumers/positions/beginning", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}},
	}
	crm.Create("crm-group", "c1", nil)
	for _, f := range forbidden {
		r := crm.Do(f.method, f.path, map[string]string{"consumer-group": "crm-group", "consumer-name": "c1"}, f.body)
		if r.Status != 403 || r.ErrorCode() != consumer.CodeForbidden {
			t.Fatalf("crm %s %s: %s", f.method, f.path, r)
		}
	}
	// The analytics client reads its topic; the crm client may not use
	// analytics' consumer instance.
	env.B.Produce(t, consumertest.Events(0, 2))
	c := analytics.Create("analytics-group", "c1", map[string]any{"auto.offset.reset": "earliest"})
	c.Subscribe(topic)
	if recs := consumertest.ReadN(t, c, 2); len(recs) != 2 {
		t.Fatalf("read %d", len(recs))
	}
	r = crm.Do("GET", "/consumers/records", c.Headers(), nil)
	if r.Status != 403 || r.ErrorCode() != consumer.CodeForbidden {
		t.Fatalf("crm reading analytics' instance: %s", r)
	}
	// The token and OpenAPI endpoints need no token.
	if r := anon.Do("GET", "/openapi.json", nil, nil); r.Status != 200 {
		t.Fatalf("openapi.json: %s", r)
	}
}

func TestStreamEndsWhenTheTokenExpires(t *testing.T) {
	env := secured(t, func(c *consumer.Config) { c.TokenTTL = time.Second })
	api := consumertest.NewAPI(t, env.Server.URL)
	api.Token = token(t, api, "analytics", "s3cret")
	c := api.Create("g", "c1", nil)
	c.Subscribe(topic)
	s := c.Stream("")
	defer s.Close()
	ev, ok := s.Next()
	if !ok || ev.Type != "error" || !strings.Contains(string(ev.Data), `"error_code":40101`) {
		t.Fatalf("got %+v %v, want an error event", ev, ok)
	}
	if _, ok := s.Next(); ok {
		t.Fatal("the stream went on after the token expired")
	}
}

func TestTokenEndpointInOpenMode(t *testing.T) {
	env := start(t, nil)
	status, tr := requestToken(t, env.API, url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {"y"}}, [2]string{})
	if status != 400 || tr.Error != "invalid_client" {
		t.Fatalf("got %d %+v", status, tr)
	}
}

func TestEphemeralSigningKeyIsAnnounced(t *testing.T) {
	env := start(t, func(c *consumer.Config) {
		c.Clients = []auth.Client{{ID: "a", SecretHash: cheapHash(t, "b"), Topics: []string{topic}}}
	})
	if notes := strings.Join(env.Handler.StartupNotes(), "\n"); !strings.Contains(notes, "restart") {
		t.Fatalf("notes %q", notes)
	}
}
