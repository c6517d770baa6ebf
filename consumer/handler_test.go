package consumer_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/consumertest"
	"github.com/parleyhq/parley/event"
)

func TestOpenModeServesOnlyLoopback(t *testing.T) {
	env := start(t, nil)
	if !env.Handler.Open() {
		t.Fatal("no clients configured, yet the API is not open")
	}
	notes := strings.Join(env.Handler.StartupNotes(), "\n")
	if !strings.Contains(notes, "loopback") {
		t.Fatalf("start-up notes do not say the API answers loopback only: %q", notes)
	}
	cases := []struct {
		name, remote string
		header       map[string]string
		want         int
	}{
		{"ipv4 loopback", "127.0.0.1:5000", nil, 200},
		{"ipv6 loopback", "[::1]:5000", nil, 200},
		{"remote host", "192.0.2.7:5000", nil, 403},
		{"remote ipv6", "[2001:db8::1]:5000", nil, 403},
		{"proxied from a remote host", "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, 403},
		{"proxied through loopback only", "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "127.0.0.1"}, 200},
		{"Forwarded header", "127.0.0.1:5000", map[string]string{"Forwarded": `for="[2001:db8::2]";proto=https`}, 403},
		{"X-Real-IP", "127.0.0.1:5000", map[string]string{"X-Real-IP": "198.51.100.1"}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/partitions", nil)
			r.RemoteAddr = c.remote
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			env.Handler.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if c.want == 403 && !strings.Contains(w.Body.String(), `"error_code":40301`) {
				t.Fatalf("body %s", w.Body)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	env := start(t, nil)
	c := env.API.Create("g", "c1", nil)
	cases := []struct {
		name     string
		group    string
		body     any
		status   int
		code     int
		contains string
	}{
		{"duplicate", "g", nil, 409, consumer.CodeConsumerExists, "already exists"},
		{"bad reset", "g2", map[string]any{"auto.offset.reset": "middle"}, 422, consumer.CodeInvalidConfig, "auto.offset.reset"},
		{"bad bool", "g2", map[string]any{"auto.commit.enable": "maybe"}, 422, consumer.CodeInvalidConfig, "auto.commit.enable"},
		{"bad number", "g2", map[string]any{"fetch.min.bytes": "lots"}, 422, consumer.CodeInvalidConfig, "fetch.min.bytes"},
		{"unknown key", "g2", map[string]any{"max.poll.records": 5}, 422, consumer.CodeInvalidConfig, "unknown key"},
		{"nested value", "g2", map[string]any{"format": []string{"json"}}, 422, consumer.CodeInvalidConfig, "format"},
		{"not JSON", "g2", "{nope", 422, consumer.CodeInvalidRequest, "Invalid JSON"},
		{"name in a Mix body", "g2", map[string]any{"name": "x"}, 422, consumer.CodeInvalidConfig, "consumer-name header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := env.API.Do("POST", "/consumers", map[string]string{"consumer-group": tc.group, "consumer-name": c.Name}, tc.body)
			if r.Status != tc.status || r.ErrorCode() != tc.code || !strings.Contains(string(r.Body), tc.contains) {
				t.Fatalf("got %s, want %d %d containing %q", r, tc.status, tc.code, tc.contains)
			}
		})
	}
	t.Run("missing headers", func(t *testing.T) {
		r := env.API.Do("POST", "/consumers", map[string]string{"consumer-group": "g"}, nil)
		if r.Status != 422 || r.ErrorCode() != consumer.CodeInvalidRequest {
			t.Fatalf("got %s", r)
		}
	})
	t.Run("Mix values as JSON strings", func(t *testing.T) {
		env.API.Create("g3", "c1", map[string]any{"auto.offset.reset": "latest", "consumer.request.timeout.ms": "1000", "fetch.min.bytes": "-1", "auto.commit.enable": "false"})
	})
}

// instanceRoutes are the Mix routes that act on an instance, with a valid
// body each.
var instanceRoutes = []struct {
	method, path string
	body         any
}{
	{"DELETE", "/consumers", nil},
	{"POST", "/consumers/subscription", map[string]any{"topics": []string{topic}}},
	{"GET", "/consumers/subscription", nil},
	{"DELETE", "/consumers/subscription", nil},
	{"POST", "/consumers/assignments", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}},
	{"GET", "/consumers/assignments", nil},
	{"GET", "/consumers/records", nil},
	{"GET", "/consumers/records/stream", nil},
	{"POST", "/consumers/offsets", nil},
	{"POST", "/consumers/committed/offsets", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}},
	{"POST", "/consumers/positions", map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 1}}}},
	{"POST", "/consumers/positions/beginning", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}},
	{"POST", "/consumers/positions/end", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}},
}

func TestInstanceRouteErrors(t *testing.T) {
	env := start(t, func(c *consumer.Config) { c.IdleTimeout = 200 * time.Millisecond })
	for _, rt := range instanceRoutes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			r := env.API.Do(rt.method, rt.path, map[string]string{"consumer-group": "g"}, rt.body)
			if r.Status != 422 || r.ErrorCode() != consumer.CodeInvalidRequest {
				t.Fatalf("without consumer-name: %s", r)
			}
			r = env.API.Do(rt.method, rt.path, map[string]string{"consumer-group": "g", "consumer-name": "nobody"}, rt.body)
			if r.Status != 404 || r.ErrorCode() != consumer.CodeConsumerNotFound || !strings.Contains(string(r.Body), "Consumer instance not found.") {
				t.Fatalf("unknown instance: %s", r)
			}
			// The same through Confluent's path.
			cpath := "/consumers/g/instances/nobody" + strings.TrimPrefix(rt.path, "/consumers")
			method := rt.method
			if rt.path == "/consumers/committed/offsets" {
				method, cpath = "GET", "/consumers/g/instances/nobody/offsets"
			}
			r = env.API.Do(method, cpath, nil, rt.body)
			if r.Status != 404 || r.ErrorCode() != consumer.CodeConsumerNotFound {
				t.Fatalf("unknown instance through %s %s: %s", method, cpath, r)
			}
		})
	}
	// An expired instance says so on every route.
	c := env.API.Create("g", "gone", nil)
	consumertest.Eventually(t, 10*time.Second, "the idle instance to expire", func() bool {
		return env.Handler.ConsumerCount() == 0
	})
	for _, rt := range instanceRoutes {
		r := c.Do(rt.method, rt.path, rt.body)
		if r.Status != 404 || r.ErrorCode() != consumer.CodeConsumerExpired || !strings.Contains(string(r.Body), "expired after 200ms of inactivity") {
			t.Fatalf("%s %s on an expired instance: %s", rt.method, rt.path, r)
		}
	}
	if got := env.Gauge("parley_consumer_api_consumers"); got != 0 {
		t.Fatalf("consumers gauge %v after expiry", got)
	}
	// Creating it again works.
	env.API.Create("g", "gone", nil)
	if got := env.Gauge("parley_consumer_api_consumers"); got != 1 {
		t.Fatalf("consumers gauge %v", got)
	}
}

func TestBodyErrors(t *testing.T) {
	env := start(t, nil)
	env.B.Produce(t, consumertest.Events(0, 3)) // offsets 1..3
	c := env.API.Create("g", "c1", nil)
	c2 := env.API.Create("g", "c2", nil)
	c.Subscribe(topic)
	c2.Subscribe(topic) // c2 has no partition: c1 holds the only one
	bad := []struct {
		name, method, path string
		who                *consumertest.Consumer
		body               any
		status, code       int
	}{
		{"subscribe: no body", "POST", "/consumers/subscription", c, nil, 422, consumer.CodeInvalidRequest},
		{"subscribe: no topics", "POST", "/consumers/subscription", c, map[string]any{"topics": []string{}}, 422, consumer.CodeInvalidRequest},
		{"subscribe: pattern matching nothing", "POST", "/consumers/subscription", c, map[string]any{"topic_pattern": "crm.*"}, 404, consumer.CodeTopicNotFound},
		{"subscribe: bad pattern", "POST", "/consumers/subscription", c, map[string]any{"topic_pattern": "rasa("}, 422, consumer.CodeInvalidRequest},
		{"subscribe: pattern and topics", "POST", "/consumers/subscription", c, map[string]any{"topic_pattern": "rasa.*", "topics": []string{topic}}, 422, consumer.CodeInvalidRequest},
		{"subscribe: misspelt field", "POST", "/consumers/subscription", c, map[string]any{"topic": topic}, 422, consumer.CodeInvalidRequest},
		{"subscribe: unknown topic", "POST", "/consumers/subscription", c, map[string]any{"topics": []string{"nope"}}, 404, consumer.CodeTopicNotFound},
		{"assign while subscribed", "POST", "/consumers/assignments", c, map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}, 409, consumer.CodeIllegalState},
		{"assign: unknown partition", "POST", "/consumers/assignments", c, map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 3}}}, 404, consumer.CodePartitionNotFound},
		{"assign: no body", "POST", "/consumers/assignments", c, nil, 422, consumer.CodeInvalidRequest},
		{"records: bad timeout", "GET", "/consumers/records?timeout=soon", c, nil, 422, consumer.CodeInvalidRequest},
		{"records: bad max_bytes", "GET", "/consumers/records?max_bytes=x", c, nil, 422, consumer.CodeInvalidRequest},
		{"records: negative timeout", "GET", "/consumers/records?timeout=-5", c, nil, 422, consumer.CodeInvalidRequest},
		{"records: zero max_bytes", "GET", "/consumers/records?max_bytes=0", c, nil, 422, consumer.CodeInvalidRequest},
		{"records: negative max_bytes", "GET", "/consumers/records?max_bytes=-1", c, nil, 422, consumer.CodeInvalidRequest},
		{"commit: past the end", "POST", "/consumers/offsets", c, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 4}}}, 409, consumer.CodeOffsetOutOfRange},
		{"commit: string partition past the end", "POST", "/consumers/offsets", c, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": "0", "offset": 99999}}}, 409, consumer.CodeOffsetOutOfRange},
		{"commit: non-numeric partition", "POST", "/consumers/offsets", c, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": "zero", "offset": 1}}}, 422, consumer.CodeInvalidRequest},
		{"commit: negative offset", "POST", "/consumers/offsets", c, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": -3}}}, 422, consumer.CodeInvalidRequest},
		{"commit: misspelt field", "POST", "/consumers/offsets", c, map[string]any{"offset": []int{1}}, 422, consumer.CodeInvalidRequest},
		{"commit: unknown partition", "POST", "/consumers/offsets", c, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 2, "offset": 1}}}, 404, consumer.CodePartitionNotFound},
		{"commit: not the partition's member", "POST", "/consumers/offsets", c2, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 1}}}, 409, consumer.CodeIllegalState},
		{"committed: no body", "POST", "/consumers/committed/offsets", c, nil, 422, consumer.CodeInvalidRequest},
		{"committed: unknown topic", "POST", "/consumers/committed/offsets", c, map[string]any{"partitions": []map[string]any{{"topic": "nope", "partition": 0}}}, 404, consumer.CodeTopicNotFound},
		{"seek: no body", "POST", "/consumers/positions", c, nil, 422, consumer.CodeInvalidRequest},
		{"seek: unassigned partition", "POST", "/consumers/positions", c2, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": 1}}}, 409, consumer.CodeIllegalState},
		{"seek to beginning: no partitions", "POST", "/consumers/positions/beginning", c, map[string]any{"partitions": []any{}}, 422, consumer.CodeInvalidRequest},
		{"seek to end: unassigned", "POST", "/consumers/positions/end", c2, map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}}, 409, consumer.CodeIllegalState},
		{"seek to end: unknown topic", "POST", "/consumers/positions/end", c, map[string]any{"partitions": []map[string]any{{"topic": "nope", "partition": 0}}}, 404, consumer.CodeTopicNotFound},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.who.Do(tc.method, tc.path, tc.body)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("got %s, want %d %d", r, tc.status, tc.code)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("error content type %q", ct)
			}
			for _, param := range []string{"timeout", "max_bytes"} {
				if strings.Contains(tc.path, param+"=") && !strings.Contains(string(r.Body), param) {
					t.Fatalf("the error does not name %s: %s", param, r)
				}
			}
			if tc.code == consumer.CodeOffsetOutOfRange && !strings.Contains(string(r.Body), "1 to 3") {
				t.Fatalf("the error does not name the range: %s", r)
			}
		})
	}
	// The commits refused changed nothing.
	r := c.Must(200, "POST", "/consumers/committed/offsets", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}})
	if !strings.Contains(string(r.Body), `"offsets":[]`) {
		t.Fatalf("refused commits were stored: %s", r)
	}

	// Reading before subscribing or assigning is an illegal state.
	idle := env.API.Create("g", "idle", nil)
	for _, path := range []string{"/consumers/records", "/consumers/records/stream"} {
		if r := idle.Do("GET", path, nil); r.Status != 409 || r.ErrorCode() != consumer.CodeIllegalState {
			t.Fatalf("%s before subscribing: %s", path, r)
		}
	}
	idle.Must(204, "POST", "/consumers/assignments", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}})
	if r := idle.Do("POST", "/consumers/subscription", map[string]any{"topics": []string{topic}}); r.Status != 409 || r.ErrorCode() != consumer.CodeIllegalState {
		t.Fatalf("subscribe while assigned: %s", r)
	}
}

func TestPartitionRouteErrors(t *testing.T) {
	env := start(t, nil)
	cases := []struct {
		path         string
		status, code int
	}{
		{"/partitions?topic=nope", 404, consumer.CodeTopicNotFound},
		{"/partitions/0/offsets?topic=nope", 404, consumer.CodeTopicNotFound},
		{"/partitions/1/offsets", 404, consumer.CodePartitionNotFound},
		{"/partitions/zero/offsets", 422, consumer.CodeInvalidRequest},
		{"/partitions/-1/offsets", 422, consumer.CodeInvalidRequest},
	}
	for _, c := range cases {
		if r := env.API.Do("GET", c.path, nil, nil); r.Status != c.status || r.ErrorCode() != c.code {
			t.Fatalf("GET %s: %s", c.path, r)
		}
	}
	r := env.API.Do("GET", "/partitions", nil, nil)
	if r.Status != 200 || string(r.Body) != `{"topic":"rasa_core_events","partitions":[0]}` {
		t.Fatalf("GET /partitions: %s", r)
	}
	r = env.API.Do("GET", "/partitions/0/offsets", nil, nil)
	if r.Status != 200 || string(r.Body) != `{"beginning_offset":0,"end_offset":0}` {
		t.Fatalf("offsets of an empty table: %s", r)
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	env := start(t, nil)
	r := env.API.Do("GET", "/nothing/here", nil, nil)
	if r.Status != 404 || r.ErrorCode() != consumer.CodeNotFound {
		t.Fatalf("unknown path: %s", r)
	}
	r = env.API.Do("PUT", "/consumers/records", nil, nil)
	if r.Status != 405 || r.ErrorCode() != consumer.CodeMethodNotAllowed || !strings.Contains(r.Header.Get("Allow"), "GET") {
		t.Fatalf("wrong method: %s (Allow %q)", r, r.Header.Get("Allow"))
	}
}

func TestRateLimit(t *testing.T) {
	env := start(t, func(c *consumer.Config) { c.RateLimit, c.RateBurst = 1, 2 })
	c := env.API.Create("limited", "c1", nil)
	c.Subscribe(topic)
	// Calls other than reads are not limited: a sequential walk-through
	// never trips it.
	for range 10 {
		c.Must(200, "GET", "/consumers/subscription", nil)
		c.Must(200, "GET", "/consumers/assignments", nil)
	}
	// 404s cost nothing.
	ghost := env.API.Consumer("limited", "ghost")
	for range 10 {
		if r := ghost.Do("GET", "/consumers/records?timeout=0", nil); r.Status != 404 {
			t.Fatalf("records of a missing instance: %s", r)
		}
	}
	var limited *consumertest.Response
	for range 10 {
		r := c.Do("GET", "/consumers/records?timeout=0", nil)
		if r.Status == http.StatusTooManyRequests {
			limited = &r
			break
		}
	}
	if limited == nil {
		t.Fatal("10 reads in a row at 1 read/s were not limited")
	}
	if limited.ErrorCode() != consumer.CodeRateLimited {
		t.Fatalf("429 body: %s", limited)
	}
	if ra, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
	// Commit and delete still work; another instance of the group has
	// its own bucket.
	c.Must(204, "POST", "/consumers/offsets", nil)
	c2 := env.API.Create("limited", "c2", nil)
	c2.Subscribe(topic)
	c2.Must(200, "GET", "/consumers/records?timeout=0", nil)
	c.Must(204, "DELETE", "/consumers", nil)
}

func TestCommitEverythingReadAndAutoCommit(t *testing.T) {
	env := start(t, func(c *consumer.Config) { c.AutoCommitInterval = time.Hour })
	env.B.Produce(t, consumertest.Events(0, 6))
	committed := func(c *consumertest.Consumer) string {
		r := c.Must(200, "POST", "/consumers/committed/offsets", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}})
		return string(r.Body)
	}

	// Manual: an empty commit commits everything read.
	m := env.API.Create("manual", "c1", map[string]any{"auto.offset.reset": "earliest", "auto.commit.enable": false})
	m.Subscribe(topic)
	recs := consumertest.ReadN(t, m, 6)
	m.Must(204, "POST", "/consumers/offsets", nil)
	want := `{"offsets":[{"topic":"rasa_core_events","partition":0,"offset":` + strconv.FormatInt(recs[5].Offset+1, 10) + `,"metadata":""}]}`
	if got := committed(m); got != want {
		t.Fatalf("committed %s, want %s", got, want)
	}
	// An explicit empty list commits nothing.
	m.Must(204, "POST", "/consumers/offsets", map[string]any{"offsets": []any{}})

	// Auto commit: the offsets read are committed when the instance
	// closes, however long the interval.
	a := env.API.Create("auto", "c1", map[string]any{"auto.offset.reset": "earliest", "auto.commit.enable": "true"})
	a.Subscribe(topic)
	consumertest.ReadN(t, a, 6)
	a.Must(204, "DELETE", "/consumers", nil)
	b := env.API.Create("auto", "c2", nil)
	if got := committed(b); !strings.Contains(got, `"offset":`+strconv.FormatInt(recs[5].Offset+1, 10)) {
		t.Fatalf("auto commit on close: %s", got)
	}
	b.Subscribe(topic)
	if more := b.Records("timeout=200"); len(more) != 0 {
		t.Fatalf("read %d records already auto-committed", len(more))
	}
}

func TestMaxBytesKeepsTheRest(t *testing.T) {
	env := start(t, nil)
	env.B.Produce(t, consumertest.Events(0, 5))
	c := env.API.Create("g", "c1", map[string]any{"auto.offset.reset": "earliest"})
	c.Subscribe(topic)
	var seqs []int
	for range 5 {
		recs := c.Records("timeout=2000&max_bytes=1")
		if len(recs) != 1 {
			t.Fatalf("max_bytes=1 returned %d records, want exactly one", len(recs))
		}
		seqs = append(seqs, recs[0].Seq())
	}
	if jsonInts(seqs) != "[0,1,2,3,4]" {
		t.Fatalf("read %v", seqs)
	}
}

func jsonInts(v []int) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDefaultResetIsLatest(t *testing.T) {
	env := start(t, nil)
	env.B.Produce(t, consumertest.Events(0, 3))
	c := env.API.Create("g", "c1", nil)
	c.Subscribe(topic)
	if recs := c.Records("timeout=200"); len(recs) != 0 {
		t.Fatalf("a latest consumer read %d old records", len(recs))
	}
	env.B.Produce(t, consumertest.Events(3, 1))
	if recs := consumertest.ReadN(t, c, 1); recs[0].Seq() != 3 {
		t.Fatalf("read seq %d", recs[0].Seq())
	}
}

func TestConfluentPaths(t *testing.T) {
	env := start(t, nil)
	env.B.Produce(t, consumertest.Events(0, 3))
	api := env.API
	r := api.Do("POST", "/consumers/cgroup", nil, map[string]any{"name": "inst", "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"})
	var created struct {
		InstanceID string `json:"instance_id"`
		BaseURI    string `json:"base_uri"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &created) != nil || created.InstanceID != "inst" || created.BaseURI != env.Server.URL+"/consumers/cgroup/instances/inst" {
		t.Fatalf("create: %s", r)
	}
	if r := api.Do("POST", "/consumers/cgroup", nil, map[string]any{"name": "inst"}); r.Status != 409 || r.ErrorCode() != consumer.CodeConsumerExists {
		t.Fatalf("duplicate create: %s", r)
	}
	base := "/consumers/cgroup/instances/inst"
	if r := api.Do("POST", base+"/subscription", nil, map[string]any{"topics": []string{topic}}); r.Status != 204 {
		t.Fatalf("subscribe: %s", r)
	}
	if r := api.Do("GET", base+"/subscription", nil, nil); r.Status != 200 || string(r.Body) != `{"topics":["rasa_core_events"]}` {
		t.Fatalf("subscription: %s", r)
	}
	var recs []consumertest.Record
	deadline := time.Now().Add(20 * time.Second)
	for len(recs) < 3 && time.Now().Before(deadline) {
		r := api.Do("GET", base+"/records?timeout=1000", nil, nil)
		if r.Status != 200 || r.Header.Get("Content-Type") != "application/vnd.kafka.json.v2+json" {
			t.Fatalf("records: %s (%s)", r, r.Header.Get("Content-Type"))
		}
		var batch []consumertest.Record
		if err := json.Unmarshal(r.Body, &batch); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, batch...)
	}
	if len(recs) != 3 || recs[0].Seq() != 0 {
		t.Fatalf("read %d records", len(recs))
	}
	r = api.Do("POST", base+"/offsets", nil, map[string]any{"offsets": []map[string]any{{"topic": topic, "partition": 0, "offset": recs[2].Offset}}})
	if r.Status != 200 || string(r.Body) != "[]" {
		t.Fatalf("commit: %s", r)
	}
	// Confluent reads committed offsets with GET and a body.
	r = api.Do("GET", base+"/offsets", nil, map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}})
	if r.Status != 200 || !strings.Contains(string(r.Body), `"offset":`+strconv.FormatInt(recs[2].Offset+1, 10)) {
		t.Fatalf("committed: %s", r)
	}
	if r := api.Do("DELETE", base, nil, nil); r.Status != 204 {
		t.Fatalf("delete: %s", r)
	}
	if r := api.Do("GET", base+"/subscription", nil, nil); r.Status != 404 || r.ErrorCode() != consumer.CodeConsumerNotFound {
		t.Fatalf("after delete: %s", r)
	}

	// Confluent's default format is binary: base64 keys and values.
	r = api.Do("POST", "/consumers/bgroup", nil, map[string]any{"auto.offset.reset": "earliest"})
	if r.Status != 200 || json.Unmarshal(r.Body, &created) != nil || !strings.HasPrefix(created.InstanceID, "rest-consumer-") {
		t.Fatalf("create with a generated name: %s", r)
	}
	base = "/consumers/bgroup/instances/" + created.InstanceID
	api.Do("POST", base+"/assignments", nil, map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}})
	r = api.Do("GET", base+"/records?timeout=2000", nil, nil)
	var bin []struct {
		Key, Value string
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &bin) != nil || len(bin) == 0 || r.Header.Get("Content-Type") != "application/vnd.kafka.binary.v2+json" {
		t.Fatalf("binary records: %s", r)
	}
	value, err := base64.StdEncoding.DecodeString(bin[0].Value)
	if err != nil || !bytes.Contains(value, []byte(`"seq": 0`)) {
		t.Fatalf("binary value %q: %v", bin[0].Value, err)
	}
}

func TestDeleteInterruptsAWaitingRead(t *testing.T) {
	env := start(t, nil)
	c := env.API.Create("g", "c1", nil)
	c.Subscribe(topic)
	done := make(chan consumertest.Response, 1)
	go func() { done <- c.Do("GET", "/consumers/records?timeout=60000", nil) }()
	consumertest.Eventually(t, 10*time.Second, "the read to wait", func() bool {
		return env.Gauge("parley_consumer_api_waiting_reads") == 1
	})
	c.Must(204, "DELETE", "/consumers", nil)
	select {
	case r := <-done:
		if r.Status != 200 || string(r.Body) != "[]" {
			t.Fatalf("interrupted read: %s", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("deleting the instance did not end its waiting read")
	}
}

func TestCloseEndsStreamsAndRefusesCalls(t *testing.T) {
	env := start(t, nil)
	c := env.API.Create("g", "c1", nil)
	c.Subscribe(topic)
	s := c.Stream("")
	defer s.Close()
	closed := make(chan error, 1)
	go func() { closed <- env.Handler.Close(t.Context()) }()
	ev, ok := s.Next()
	if !ok || ev.Type != "error" || !strings.Contains(string(ev.Data), `"error_code":50301`) {
		t.Fatalf("got %+v %v, want a shutting-down error event", ev, ok)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if r := c.Do("GET", "/consumers/subscription", nil); r.Status != 503 || r.ErrorCode() != consumer.CodeUnavailable {
		t.Fatalf("after Close: %s", r)
	}
}

// readingThree starts the API with three events and a consumer
// subscribed from the earliest.
func readingThree(t *testing.T) (*consumertest.Env, *consumertest.Consumer, []event.Event) {
	env := start(t, nil)
	c := env.API.Create("g", "c1", map[string]any{"auto.offset.reset": "earliest"})
	c.Subscribe(topic)
	evs := consumertest.Events(0, 3)
	env.B.Produce(t, evs)
	return env, c, evs
}

func TestRecordsAsNDJSONValues(t *testing.T) {
	env, c, evs := readingThree(t)
	h := c.Headers()
	h["Accept"] = "application/json;q=0.5, application/x-ndjson"
	var got []string
	for len(got) < len(evs) {
		r := env.API.Do("GET", "/consumers/records?data=value&timeout=5000", h, nil)
		if r.Status != 200 || r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("records as NDJSON: %s (%s)", r, r.Header.Get("Content-Type"))
		}
		if len(r.Body) == 0 {
			t.Fatalf("no records after %d", len(got))
		}
		lines := strings.SplitAfter(string(r.Body), "\n")
		if lines[len(lines)-1] != "" {
			t.Fatalf("body does not end with a line break: %q", r.Body)
		}
		got = append(got, lines[:len(lines)-1]...)
	}
	for i, ev := range evs {
		if want := string(ev.RasaJSON()) + "\n"; got[i] != want {
			t.Fatalf("line %d: %q, want %q", i, got[i], want)
		}
	}
	// Everything read is committed by an empty commit, offsets unseen.
	c.Must(204, "POST", "/consumers/offsets", nil)
	r := c.Must(200, "POST", "/consumers/committed/offsets", map[string]any{"partitions": []map[string]any{{"topic": topic, "partition": 0}}})
	// Row ids 1-3 were read; the committed offset is the next to read.
	if !strings.Contains(string(r.Body), `"offset":4`) {
		t.Fatalf("committed after reading 3 values: %s", r.Body)
	}
}

func TestStreamValuesOnly(t *testing.T) {
	_, c, evs := readingThree(t)
	if r := c.Do("GET", "/consumers/records/stream?data=keys", nil); r.Status != 422 || !strings.Contains(string(r.Body), `data \"keys\"`) {
		t.Fatalf("bad data parameter: %s", r)
	}
	s := c.StreamQuery("data=value", "")
	defer s.Close()
	for i, want := range evs {
		ev, ok := s.Next()
		if !ok {
			t.Fatalf("stream ended after %d events", i)
		}
		// The SQL log's offsets are row ids, from 1.
		if ev.Type != "record" || ev.ID != fmt.Sprintf("0:%d", i+1) {
			t.Fatalf("event %d: type %q id %q", i, ev.Type, ev.ID)
		}
		if string(ev.Data) != string(want.RasaJSON()) {
			t.Fatalf("event %d data:\n%s\nwant the event's Rasa bytes:\n%s", i, ev.Data, want.RasaJSON())
		}
	}
}
