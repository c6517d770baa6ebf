package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer/consumertest"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestGatewayKafkaTopicCreatedLater is issue 21's real-Kafka "done when":
// parley starts although its topic does not exist (the cluster does not
// auto-create topics), /ready names the broker and the reason, events are
// accepted into the spool, and once the topic is created they arrive in
// Kafka and the consumer API serves the topic.
func TestGatewayKafkaTopicCreatedLater(t *testing.T) {
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	topic := fmt.Sprintf("later-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	yml := fmt.Sprintf("event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  security_protocol: PLAINTEXT\nspool:\n  dir: %s/spool\n", seeds, topic, dir)
	ep, err := config.Parse("endpoints.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(ctx, ep, GatewayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start with a missing topic: %v", err)
	}
	srv := httptest.NewServer(g.Server.Handler())
	defer func() {
		srv.Close()
		g.Close(context.Background())
	}()
	api := consumertest.NewAPI(t, srv.URL)

	r := api.Do("GET", "/ready", nil, nil)
	if r.Status != http.StatusServiceUnavailable || !bytes.Contains(r.Body, []byte(`"name":"broker kafka"`)) ||
		!bytes.Contains(r.Body, []byte(fmt.Sprintf(`topic \"%s\" does not exist`, topic))) {
		t.Fatalf("/ready with the topic missing: %s", r)
	}
	if r := api.Do("GET", "/partitions?topic="+topic, nil, nil); r.Status != http.StatusNotFound {
		t.Fatalf("partitions of the missing topic: %s", r)
	}
	if r := api.Do("POST", "/events", nil, fixtures.EventsNDJSON()); r.Status != http.StatusAccepted {
		t.Fatalf("POST /events with the topic missing: %s", r)
	}

	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	want := fixtures.RasaBytes()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < len(want) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want { // one partition: in order
		if got[i] != string(want[i]) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	for {
		r := api.Do("GET", "/ready", nil, nil)
		if r.Status == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("/ready once the topic exists: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The consumer API serves the topic that appeared after the start
	// (its metadata may be cached for a few seconds).
	for {
		r := api.Do("GET", "/partitions?topic="+topic, nil, nil)
		if r.Status == http.StatusOK && strings.Contains(string(r.Body), "0") {
			break
		}
		if r.Status != http.StatusNotFound || ctx.Err() != nil {
			t.Fatalf("partitions of the created topic: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := api.Create("later", "c1", map[string]any{"auto.offset.reset": "earliest"})
	c.Subscribe(topic)
	var recs []consumertest.Record
	for len(recs) < len(want) && ctx.Err() == nil {
		recs = append(recs, c.Records("timeout=1000")...)
	}
	if len(recs) != len(want) {
		t.Fatalf("consumer API read %d records, want %d", len(recs), len(want))
	}
}
