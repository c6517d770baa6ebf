package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer/auth"
	"github.com/parleyhq/parley/internal/testenv"
)

// The Mix collector test replays, request for request, what Nuance's
// Mix event-log collector (microsoft/mix-event-log-collector,
// pkg/log_fetchers/mix_log_api/fetcher.go and partition_fetcher.go, its
// bodies typed in pkg/log_fetchers/types/types.go, its token request in
// pkg/oauth/authenticate.go) sends to log.api, against parley serve: every
// event must arrive once.

const (
	mixApp    = "NMDPTRIAL_parley_test_20261202"
	mixSecret = "s3cret/with:colons&more"
)

func mixClientID() string { return "appID:" + mixApp + ":geo:us:clientName:neap" }

// mixCollector is the collector's log fetcher with its default options
// (consumer_options {"auto.offset.reset": ...}, consumer group id "01").
type mixCollector struct {
	t      *testing.T
	api    string
	reset  string
	topic  string // the collector reads the topic named after its appID
	group  string
	token  string
	http   http.Client
	counts map[int]int // seq -> deliveries
}

func (f *mixCollector) do(method, path string, header http.Header, body []byte) (int, []byte) {
	f.t.Helper()
	u, err := url.Parse(f.api + path)
	if err != nil {
		f.t.Fatal(err)
	}
	// As pkg/httpclient: a hand-built request whose header map keeps the
	// collector's lower-case keys.
	req := &http.Request{Method: method, URL: u, Header: header}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := f.http.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// authenticate is oauth.GenerateToken: form body with scope=log, the
// client id and secret URL-encoded inside HTTP Basic.
func (f *mixCollector) authenticate() {
	auth := url.QueryEscape(mixClientID()) + ":" + url.QueryEscape(mixSecret)
	hdr := map[string][]string{
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(auth))},
		"Content-Type":  {"application/x-www-form-urlencoded"},
	}
	code, body := f.do("POST", "/oauth2/token", hdr, []byte("grant_type=client_credentials&scope=log"))
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if code != 200 || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		f.t.Fatalf("token: %d %s", code, body)
	}
	f.token = tok.TokenType + " " + tok.AccessToken
}

// header is LogFetcher.header.
func (f *mixCollector) header(name string) http.Header {
	return map[string][]string{
		"Authorization":  {f.token},
		"Content-Type":   {"application/json"},
		"consumer-group": {f.group},
		"consumer-name":  {name},
	}
}

func (f *mixCollector) createConsumer() string {
	name := "consumer-" + uuid.NewString()
	data, _ := json.Marshal(map[string]any{"auto.offset.reset": f.reset})
	if code, body := f.do("POST", "/consumers", f.header(name), data); code != 204 {
		f.t.Fatalf("createConsumer: %d %s", code, body)
	}
	return name
}

func (f *mixCollector) createSubscription(name string) {
	data, _ := json.Marshal(map[string][]string{"topics": {f.topic}})
	if code, body := f.do("POST", "/consumers/subscription", f.header(name), data); code != 204 {
		f.t.Fatalf("createSubscription: %d %s", code, body)
	}
}

func (f *mixCollector) getPartitions(name string) []int64 {
	code, body := f.do("GET", "/partitions", f.header(name), nil)
	var ps struct {
		Topic      string  `json:"topic"`
		Partitions []int64 `json:"partitions"`
	}
	if code != 200 || json.Unmarshal(body, &ps) != nil || ps.Topic != f.topic {
		f.t.Fatalf("getPartitions: %d %s", code, body)
	}
	return ps.Partitions
}

// mixPartitions is types.Partitions: partitions as strings.
func (f *mixCollector) mixPartitions(p int) []byte {
	data, _ := json.Marshal(map[string]any{"partitions": []map[string]string{{"topic": f.topic, "partition": fmt.Sprintf("%d", p)}}})
	return data
}

func (f *mixCollector) assignPartitionToConsumer(p int, name string) {
	if code, body := f.do("POST", "/consumers/assignments", f.header(name), f.mixPartitions(p)); code != 204 {
		f.t.Fatalf("assignPartitionToConsumer: %d %s", code, body)
	}
}

// getOffsetDetails: the partition's range, then the committed offset.
func (f *mixCollector) getOffsetDetails(p int, name string) (beginning, end int64) {
	code, body := f.do("GET", fmt.Sprintf("/partitions/%d/offsets", p), f.header(name), nil)
	var r struct {
		Beginning int64 `json:"beginning_offset"`
		End       int64 `json:"end_offset"`
	}
	if code >= 300 || json.Unmarshal(body, &r) != nil {
		f.t.Fatalf("getOffsetRange: %d %s", code, body)
	}
	if code, body := f.do("POST", "/consumers/committed/offsets", f.header(name), f.mixPartitions(p)); code >= 300 {
		f.t.Fatalf("getCurrentOffset: %d %s", code, body)
	}
	return r.Beginning, r.End
}

// commitOffset is types.Offsets: here the partition is a number. The
// collector logs a failed commit and goes on; it is returned for the
// test to look at.
func (f *mixCollector) commitOffset(p int, name string, offset int64) (int, []byte) {
	data, _ := json.Marshal(map[string]any{"offsets": []map[string]any{{"topic": f.topic, "partition": int64(p), "offset": offset}}})
	return f.do("POST", "/consumers/offsets", f.header(name), data)
}

func (f *mixCollector) seek(p int, name, where string) {
	if code, body := f.do("POST", "/consumers/positions/"+where, f.header(name), f.mixPartitions(p)); code != 204 {
		f.t.Fatalf("seek to %s: %d %s", where, code, body)
	}
}

// start is LogFetcher.Start: one consumer subscribes (and is never used
// again), then each partition gets a consumer of its own, assigned it and
// positioned per auto.offset.reset.
func (f *mixCollector) start() map[int]string {
	f.authenticate()
	first := f.createConsumer()
	f.createSubscription(first)
	parts := f.getPartitions(first)
	fetchers := map[int]string{}
	for _, p := range parts {
		name := f.createConsumer()
		f.assignPartitionToConsumer(int(p), name)
		beginning, end := f.getOffsetDetails(int(p), name)
		switch f.reset {
		case "earliest":
			f.commitOffset(int(p), name, beginning)
			f.seek(int(p), name, "beginning")
		case "latest":
			// Commits the end, one past the last record: parley refuses
			// it (409, naming the range) and the collector ignores that.
			if code, body := f.commitOffset(int(p), name, end); code != 409 || !strings.Contains(string(body), "40905") {
				f.t.Errorf("commit of the end offset: %d %s", code, body)
			}
			f.seek(int(p), name, "end")
		}
		f.getOffsetDetails(int(p), name)
		fetchers[int(p)] = name
	}
	return fetchers
}

// fetch is one round of PartitionFetcher.FetchRecords for a partition:
// GET /consumers/records, then a commit of the last offset of the batch.
func (f *mixCollector) fetch(p int, name string) int {
	code, body := f.do("GET", "/consumers/records", f.header(name), nil)
	if code != 200 {
		f.t.Fatalf("records: %d %s", code, body)
	}
	var recs []struct {
		Offset int64 `json:"offset"`
		Value  struct {
			Seq int `json:"seq"`
		} `json:"value"`
	}
	if err := json.Unmarshal(body, &recs); err != nil {
		f.t.Fatal(err)
	}
	offset := int64(-1)
	for _, r := range recs {
		f.counts[r.Value.Seq]++
		offset = r.Offset
	}
	if offset >= 0 {
		if code, body := f.commitOffset(p, name, offset); code >= 300 {
			f.t.Errorf("commit of offset %d of partition %d: %d %s", offset, p, code, body)
		}
	}
	return len(recs)
}

// runUntil fetches every partition in turn until want events arrived.
func (f *mixCollector) runUntil(fetchers map[int]string, want int) {
	deadline := time.Now().Add(90 * time.Second)
	for len(f.counts) < want {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d events arrived", len(f.counts), want)
		}
		for p, name := range fetchers {
			f.fetch(p, name)
		}
	}
}

func (f *mixCollector) checkOnce(from, n int) {
	f.t.Helper()
	for seq := from; seq < from+n; seq++ {
		if f.counts[seq] != 1 {
			f.t.Errorf("event %d arrived %d times", seq, f.counts[seq])
		}
	}
}

// mixGateway starts parley serve with the collector's client configured
// and posts events 0..n-1.
func mixGateway(t *testing.T, brokerYAML string) (*httptest.Server, func(from, n int)) {
	hash, err := auth.HashSecretCost(mixSecret, 1000)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	yml := brokerYAML + fmt.Sprintf(`consumer_api:
  signing_key: 0123456789abcdef0123456789abcdef-mix
  topic: %s
  clients:
    - client_id: "%s"
      client_secret_hash: "%s"
      topics: [%s]
`, mixApp, mixClientID(), hash, mixApp)
	if err := os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	ep, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(context.Background(), ep, GatewayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Server.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	publish := func(from, n int) {
		var body bytes.Buffer
		for i := from; i < from+n; i++ {
			body.Write(brokertest.Seq(fmt.Sprintf("user-%d", i%5), i).RasaJSON())
			body.WriteByte('\n')
		}
		resp, err := http.Post(srv.URL+"/events", "application/x-ndjson", &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("POST /events: %d", resp.StatusCode)
		}
	}
	return srv, publish
}

func runMixCollector(t *testing.T, srv *httptest.Server, publish func(from, n int)) {
	// earliest: the events already there, then those written while it
	// runs.
	publish(0, 30)
	f := &mixCollector{t: t, api: srv.URL, reset: "earliest", topic: mixApp, group: "appID-" + mixApp + "-clientName-neap-01", counts: map[int]int{}}
	f.http.Timeout = 60 * time.Second
	fetchers := f.start()
	f.runUntil(fetchers, 30)
	publish(30, 20)
	f.runUntil(fetchers, 50)
	f.checkOnce(0, 50)

	// latest, as a second deployment of the collector (its own group):
	// only what is written after it starts.
	l := &mixCollector{t: t, api: srv.URL, reset: "latest", topic: mixApp, group: "appID-" + mixApp + "-clientName-neap-02", counts: map[int]int{}}
	l.http.Timeout = 60 * time.Second
	lf := l.start()
	publish(50, 20)
	l.runUntil(lf, 20)
	l.checkOnce(50, 20)
	if len(l.counts) != 20 {
		t.Errorf("the latest collector read %d events, want the 20 written after it started", len(l.counts))
	}
}

func TestMixCollectorSQLDefault(t *testing.T) {
	srv, publish := mixGateway(t, "")
	runMixCollector(t, srv, publish)
}

func TestMixCollectorKafka(t *testing.T) {
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	ctx := context.Background()
	// The collector reads the topic named after its app id; a unique one
	// per run.
	_, _ = adm.DeleteTopics(ctx, mixApp)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, mixApp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), mixApp) })
	srv, publish := mixGateway(t, fmt.Sprintf("event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  partition_by_sender: true\n  security_protocol: PLAINTEXT\n", seeds, mixApp))
	runMixCollector(t, srv, publish)
}
