package consumertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/auth"
)

// tokenFor gets a token with the client credentials grant.
func tokenFor(t *testing.T, env *Env, id, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	r := env.API.Do("POST", "/oauth2/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token for %s: %s", id, r)
	}
	return tok.AccessToken
}

// testGroupsBelongToClients: client analytics tries to join client qa's
// group and to commit for it; it gets 403 and qa's offsets do not move,
// also after a restart (the owner is recorded beside the offsets).
func testGroupsBelongToClients(t *testing.T, h Harness) {
	b := h.Setup(t)
	cfg := Config()
	cfg.SigningKey = []byte("0123456789abcdef0123456789abcdef-groups")
	for _, id := range []string{"qa", "analytics"} {
		hash, err := auth.HashSecretCost(id+"-secret", 1000)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Clients = append(cfg.Clients, auth.Client{ID: id, SecretHash: hash, Topics: []string{b.Topic}})
	}
	env := Start(t, b, cfg)
	b.Produce(t, Events(0, 20))
	client := func(id string) *API {
		a := NewAPI(t, env.Server.URL)
		a.Token = tokenFor(t, env, id, id+"-secret")
		return a
	}
	qa, analytics := client("qa"), client("analytics")
	group := "qa-group"

	victim := qa.Create(group, "q1", earliest)
	victim.Subscribe(b.Topic)
	waitAssigned(t, h.Partitions, victim)
	recs := ReadN(t, victim, 5)
	last := map[int32]int64{}
	for _, r := range recs {
		last[r.Partition] = r.Offset
	}
	victim.Commit(b.Topic, last)
	var tps []map[string]any
	for p := range int32(h.Partitions) {
		tps = append(tps, map[string]any{"topic": b.Topic, "partition": p})
	}
	committed := func(c *Consumer) string {
		return string(c.Must(http.StatusOK, "POST", "/consumers/committed/offsets", map[string]any{"partitions": tps}).Body)
	}
	before := committed(victim)
	for p, o := range last {
		if !strings.Contains(before, fmt.Sprintf(`"partition":%d,"offset":%d`, p, o+1)) {
			t.Fatalf("committed offsets %s, want partition %d at %d", before, p, o+1)
		}
	}
	attack := func(instanceLive bool) {
		t.Helper()
		for _, a := range []struct {
			name, method, path string
			header             map[string]string
			body               any
		}{
			{"Mix create", "POST", "/consumers", map[string]string{"consumer-group": group, "consumer-name": "evil"}, map[string]any{}},
			{"Confluent create", "POST", "/consumers/" + group, nil, map[string]any{"name": "evil"}},
			{"commit through the victim's instance", "POST", "/consumers/offsets", map[string]string{"consumer-group": group, "consumer-name": "q1"}, map[string]any{"offsets": []map[string]any{{"topic": b.Topic, "partition": 0, "offset": 17}}}},
		} {
			r := analytics.Do(a.method, a.path, a.header, a.body)
			if !instanceLive && a.header["consumer-name"] == "q1" {
				if r.Status != http.StatusNotFound {
					t.Fatalf("%s after a restart: %s", a.name, r)
				}
				continue
			}
			if r.Status != http.StatusForbidden || r.ErrorCode() != consumer.CodeForbidden {
				t.Fatalf("%s in another client's group: %s", a.name, r)
			}
		}
	}
	attack(true)
	if after := committed(victim); after != before {
		t.Fatalf("the victim's offsets moved: %s, then %s", before, after)
	}

	env.Restart()
	qa.URL, analytics.URL = env.Server.URL, env.Server.URL
	attack(false)
	victim = qa.Create(group, "q2", earliest)
	if after := committed(victim); after != before {
		t.Fatalf("after a restart the victim's offsets are %s, were %s", after, before)
	}
}
