package consumer_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/auth"
	"github.com/parleyhq/parley/consumer/consumertest"
)

// The bodies Nuance's Mix event-log collector sends
// (microsoft/mix-event-log-collector, pkg/log_fetchers): partitions as
// JSON strings in assignments, committed-offset queries and seeks.
func TestMixStringPartitions(t *testing.T) {
	env := start(t, nil)
	env.B.Produce(t, consumertest.Events(0, 4)) // offsets 1..4
	c := env.API.Create("appID-A-clientName-neap-01", "consumer-1", map[string]any{"auto.offset.reset": "earliest"})
	strPart := map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": "0"}}}
	c.Must(204, "POST", "/consumers/assignments", strPart)
	if r := c.Must(200, "GET", "/consumers/assignments", nil); string(r.Body) != `{"partitions":[{"topic":"rasa_core_events","partition":0}]}` {
		t.Fatalf("assignments: %s", r)
	}
	r := c.Must(200, "POST", "/consumers/committed/offsets", strPart)
	if !strings.Contains(string(r.Body), `"offsets":[]`) {
		t.Fatalf("committed: %s", r)
	}
	c.Must(204, "POST", "/consumers/positions/end", strPart)
	c.Must(204, "POST", "/consumers/positions/beginning", strPart)
	recs := consumertest.ReadN(t, c, 4)
	c.Must(204, "POST", "/consumers/offsets", map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": recs[1].Offset}}})
	c.Must(204, "POST", "/consumers/positions", map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": "0", "offset": "2"}}})
	if got := c.Records("timeout=1000"); len(got) == 0 || got[0].Offset != 2 {
		t.Fatalf("after seeking to \"2\": %v", got)
	}
	r = c.Must(200, "POST", "/consumers/committed/offsets", strPart)
	if !strings.Contains(string(r.Body), `"offset":3`) {
		t.Fatalf("committed after commit of 2: %s", r)
	}
	// Mix paths do not auto-commit unless asked: deleting the consumer
	// leaves the group where the client committed it.
	c.Must(204, "DELETE", "/consumers", nil)
	c2 := env.API.Create("appID-A-clientName-neap-01", "consumer-2", nil)
	c2.Must(204, "POST", "/consumers/assignments", strPart)
	if r := c2.Must(200, "POST", "/consumers/committed/offsets", strPart); !strings.Contains(string(r.Body), `"offset":3`) {
		t.Fatalf("committed after delete: %s", r)
	}
}

// Mix's clients ask for scope=log with ids like appID:...:clientName:...,
// URL-encoded in HTTP Basic.
func TestMixTokens(t *testing.T) {
	const mixID = "appID:NMDPTRIAL_dev:geo:us:clientName:neap"
	env := secured(t, func(c *consumer.Config) {
		c.Clients = append(c.Clients, auth.Client{ID: mixID, SecretHash: cheapHash(t, "p@ss:w/rd"), Topics: []string{topic, "other"}})
	})
	cases := []struct {
		name  string
		form  url.Values
		basic [2]string
		want  int
		scope string
	}{
		{"scope=log in Basic", url.Values{"grant_type": {"client_credentials"}, "scope": {"log"}}, [2]string{mixID, "p@ss:w/rd"}, 200, topic + " other"},
		{"no scope, form fields", url.Values{"grant_type": {"client_credentials"}, "client_id": {mixID}, "client_secret": {"p@ss:w/rd"}}, [2]string{}, 200, topic + " other"},
		{"log and a topic narrows", url.Values{"grant_type": {"client_credentials"}, "scope": {"log other"}}, [2]string{mixID, "p@ss:w/rd"}, 200, "other"},
		{"a topic not the client's", url.Values{"grant_type": {"client_credentials"}, "scope": {"log crm_events"}}, [2]string{mixID, "p@ss:w/rd"}, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, tr := requestToken(t, env.API, c.form, c.basic)
			if status != c.want || (status == 200 && tr.Scope != c.scope) {
				t.Fatalf("got %d %+v, want %d scope %q", status, tr, c.want, c.scope)
			}
		})
	}
}

func TestTrailingSlashesAcceptAndConfluentErrors(t *testing.T) {
	env := start(t, nil)
	env.B.Produce(t, consumertest.Events(0, 2))
	api := env.API
	if r := api.Do("POST", "/consumers/g/", nil, map[string]any{"name": "i", "format": "json"}); r.Status != 200 {
		t.Fatalf("create with a trailing slash: %s", r)
	}
	base := "/consumers/g/instances/i"
	for _, step := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", base + "/subscription/", map[string]any{"topics": []string{topic}}, 204},
		{"GET", base + "/assignments/", nil, 200},
		{"POST", base + "/positions/", map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 1}}}, 204}, // pymapr-kafkarest's seek
		{"GET", "/partitions/", nil, 200},
	} {
		if r := api.Do(step.method, step.path, nil, step.body); r.Status != step.want && !(step.want == 204 && r.Status == 409) {
			t.Fatalf("%s %s: %s", step.method, step.path, r)
		}
	}
	// Errors on Confluent paths come in Confluent's type; Mix's in JSON.
	r := api.Do("GET", "/consumers/g/instances/nobody/records", nil, nil)
	if r.Status != 404 || r.Header.Get("Content-Type") != "application/vnd.kafka.v2+json" || r.ErrorCode() != consumer.CodeConsumerNotFound {
		t.Fatalf("Confluent 404: %s (%s)", r, r.Header.Get("Content-Type"))
	}
	r = api.Do("GET", "/consumers/records", map[string]string{"consumer-group": "g", "consumer-name": "nobody"}, nil)
	if r.Status != 404 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("Mix 404: %s (%s)", r, r.Header.Get("Content-Type"))
	}
	// A json consumer asked for binary records: 406.
	r = api.Do("GET", base+"/records?timeout=0", map[string]string{"Accept": "application/vnd.kafka.binary.v2+json"}, nil)
	if r.Status != 406 || r.ErrorCode() != consumer.CodeNotAcceptable || r.Header.Get("Content-Type") != "application/vnd.kafka.v2+json" {
		t.Fatalf("binary Accept for a json consumer: %s", r)
	}
	for _, accept := range []string{"application/vnd.kafka.json.v2+json", "application/vnd.kafka.v2+json, application/json; q=0.8", "*/*"} {
		if r := api.Do("GET", base+"/records?timeout=0", map[string]string{"Accept": accept}, nil); r.Status != 200 {
			t.Fatalf("Accept %q: %s", accept, r)
		}
	}
}

func TestTopicMetadataAndPatterns(t *testing.T) {
	env := secured(t, nil)
	env.B.Produce(t, consumertest.Events(0, 3))
	api := consumertest.NewAPI(t, env.Server.URL)
	api.Token = token(t, env.API, "analytics", "s3cret")
	crm := consumertest.NewAPI(t, env.Server.URL)
	crm.Token = token(t, env.API, "crm", "crm-secret")
	if r := api.Do("GET", "/topics", nil, nil); r.Status != 200 || string(r.Body) != `["rasa_core_events"]` || r.Header.Get("Content-Type") != "application/vnd.kafka.v2+json" {
		t.Fatalf("GET /topics: %s", r)
	}
	if r := crm.Do("GET", "/topics", nil, nil); r.Status != 200 || string(r.Body) != `[]` {
		t.Fatalf("GET /topics for a client of other topics: %s", r)
	}
	if r := crm.Do("GET", "/topics/"+topic, nil, nil); r.Status != 403 {
		t.Fatalf("another client's topic: %s", r)
	}
	if r := api.Do("GET", "/topics/"+topic, nil, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"name":"rasa_core_events"`) || !strings.Contains(string(r.Body), `"partition":0`) {
		t.Fatalf("GET /topics/t: %s", r)
	}
	if r := api.Do("GET", "/topics/"+topic+"/partitions", nil, nil); r.Status != 200 || !strings.HasPrefix(string(r.Body), `[{"partition":0`) {
		t.Fatalf("partitions: %s", r)
	}
	if r := api.Do("GET", "/topics/"+topic+"/partitions/0/offsets", nil, nil); r.Status != 200 || string(r.Body) != `{"beginning_offset":1,"end_offset":4}` {
		t.Fatalf("offsets: %s", r)
	}
	if r := api.Do("GET", "/topics/nope", nil, nil); r.Status != 403 {
		t.Fatalf("a topic outside the token: %s", r)
	}
	c := api.Consumer("pattern", "c1")
	c.Must(204, "POST", "/consumers", map[string]any{"auto.offset.reset": "earliest"})
	c.Must(204, "POST", "/consumers/subscription", map[string]any{"topic_pattern": "rasa_.*_events"})
	if r := c.Must(200, "GET", "/consumers/subscription", nil); string(r.Body) != `{"topics":["rasa_core_events"]}` {
		t.Fatalf("pattern subscription: %s", r)
	}
	if recs := consumertest.ReadN(t, c, 3); len(recs) != 3 {
		t.Fatalf("read %d", len(recs))
	}
}

// kafka-rest (npm) reads through Confluent's v1 API: reading a topic
// subscribes the instance to it; binary records.
func TestConfluentV1Read(t *testing.T) {
	env := start(t, nil)
	env.B.Produce(t, consumertest.Events(0, 2))
	r := env.API.Do("POST", "/consumers/v1group", map[string]string{"Content-Type": "application/vnd.kafka.v1+json"}, map[string]any{"id": "v1", "format": "binary", "auto.offset.reset": "smallest"})
	if r.Status != 200 || !strings.Contains(string(r.Body), `/consumers/v1group/instances/v1"`) {
		t.Fatalf("v1 create: %s", r)
	}
	r = env.API.Do("GET", "/consumers/v1group/instances/v1/topics/"+topic, map[string]string{"Accept": "application/vnd.kafka.binary.v1+json"}, nil)
	var recs []struct {
		Key, Value string
		Offset     int64
	}
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/vnd.kafka.binary.v1+json" || json.Unmarshal(r.Body, &recs) != nil || len(recs) != 2 {
		t.Fatalf("v1 read: %s (%s)", r, r.Header.Get("Content-Type"))
	}
	if v, err := base64.StdEncoding.DecodeString(recs[0].Value); err != nil || !strings.Contains(string(v), `"seq": 0`) && !strings.Contains(string(v), `"seq":0`) {
		t.Fatalf("v1 value %q: %v", v, err)
	}
	if r := env.API.Do("POST", "/consumers/v1group/instances/v1/offsets", nil, nil); r.Status != 200 {
		t.Fatalf("v1 commit: %s", r)
	}
}

// One client may not create consumers in, and so read or commit the
// offsets of, another client's group.
func TestGroupsBelongToClients(t *testing.T) {
	env := secured(t, func(c *consumer.Config) {
		c.Clients = []auth.Client{
			{ID: "qa", SecretHash: cheapHash(t, "qa-secret"), Topics: []string{topic}},
			{ID: "analytics", SecretHash: cheapHash(t, "s3cret"), Topics: []string{topic}},
			{ID: "ops", SecretHash: cheapHash(t, "ops-secret"), Topics: []string{topic}, Groups: []string{"ops-*"}},
		}
	})
	env.B.Produce(t, consumertest.Events(0, 20))
	client := func(id, secret string) *consumertest.API {
		a := consumertest.NewAPI(t, env.Server.URL)
		a.Token = token(t, env.API, id, secret)
		return a
	}
	qa, analytics, ops := client("qa", "qa-secret"), client("analytics", "s3cret"), client("ops", "ops-secret")

	victim := qa.Create("qa-group", "q1", map[string]any{"auto.offset.reset": "earliest"})
	victim.Subscribe(topic)
	recs := consumertest.ReadN(t, victim, 5)
	victim.Commit(topic, map[int32]int64{0: recs[4].Offset})
	committed := func() string {
		return string(victim.Must(200, "POST", "/consumers/committed/offsets", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}).Body)
	}
	before := committed()

	attacks := []struct {
		name, method, path string
		header             map[string]string
		body               any
	}{
		{"Mix create", "POST", "/consumers", map[string]string{"consumer-group": "qa-group", "consumer-name": "evil"}, map[string]any{}},
		{"Confluent create", "POST", "/consumers/qa-group", nil, map[string]any{"name": "evil"}},
		{"the victim's instance", "POST", "/consumers/offsets", victim.Headers(), map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 17}}}},
		{"an ops group", "POST", "/consumers/ops-reports", nil, map[string]any{"name": "evil"}},
	}
	for _, a := range attacks {
		r := analytics.Do(a.method, a.path, a.header, a.body)
		if r.Status != 403 || r.ErrorCode() != consumer.CodeForbidden {
			t.Fatalf("%s: %s", a.name, r)
		}
	}
	// ops is confined to its groups.
	if r := ops.Do("POST", "/consumers/ops-reports", nil, map[string]any{"name": "o1"}); r.Status != 200 {
		t.Fatalf("ops in its group: %s", r)
	}
	if r := ops.Do("POST", "/consumers/elsewhere", nil, map[string]any{"name": "o1"}); r.Status != 403 {
		t.Fatalf("ops outside its groups: %s", r)
	}
	// The owner survives a restart (recorded beside the offsets).
	env.Restart()
	qa.URL, analytics.URL = env.Server.URL, env.Server.URL
	if r := analytics.Do("POST", "/consumers/qa-group", nil, map[string]any{"name": "evil"}); r.Status != 403 {
		t.Fatalf("after a restart: %s", r)
	}
	victim = qa.Create("qa-group", "q2", map[string]any{"auto.offset.reset": "earliest"})
	if after := committed(); after != before {
		t.Fatalf("the victim's offsets moved: %s, then %s", before, after)
	}
	victim.Subscribe(topic)
	if next := consumertest.ReadN(t, victim, 1); next[0].Offset != recs[4].Offset+1 {
		t.Fatalf("the victim resumed at %d, want %d", next[0].Offset, recs[4].Offset+1)
	}
}

func TestRateLimitBuckets(t *testing.T) {
	env := secured(t, func(c *consumer.Config) { c.RateLimit, c.RateBurst = 1, 2 })
	// Anonymous calls never spend the token endpoint's bucket.
	for range 15 {
		env.API.Do("GET", "/openapi.json", nil, nil)
	}
	if r := env.API.Do("GET", "/openapi.json", nil, nil); r.Status != 429 {
		t.Fatalf("16 anonymous calls at 1/s were not limited: %d", r.Status)
	}
	tok := token(t, env.API, "analytics", "s3cret")
	// Failed authentications are throttled per address, valid or not.
	var throttled *consumertest.Response
	for i := range 40 {
		r := env.API.Do("GET", "/partitions", map[string]string{"Authorization": "Bearer not-a-token-" + strconv.Itoa(i)}, nil)
		if r.Status == http.StatusTooManyRequests {
			throttled = &r
			break
		}
		if r.Status != 401 {
			t.Fatalf("bad token: %s", r)
		}
	}
	if throttled == nil || throttled.Header.Get("Retry-After") == "" {
		t.Fatal("40 failed authentications in a row were not throttled")
	}
	if status, _ := requestToken(t, env.API, url.Values{"grant_type": {"client_credentials"}}, [2]string{"analytics", "guess"}); status != 429 {
		t.Fatalf("a guess at the secret while throttled: %d", status)
	}
	if r := env.API.Do("GET", "/partitions", map[string]string{"Authorization": "Bearer " + tok}, nil); r.Status != 429 {
		t.Fatalf("a valid token from a throttled address: %s", r)
	}
}
