package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestGatewayKafka is issue 5's "done when" for parley serve: the fixtures
// posted to POST /events reach a real Kafka through the spool, and a plain
// franz-go consumer reads Rasa's exact bytes, the sender as key, and the
// RASA_ENVIRONMENT and parley-event-id headers.
func TestGatewayKafka(t *testing.T) {
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	t.Setenv("RASA_ENVIRONMENT", "")
	os.Unsetenv("RASA_ENVIRONMENT")
	topic := fmt.Sprintf("gateway-%d", time.Now().UnixNano())
	ctx := context.Background()
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	yml := fmt.Sprintf("event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  partition_by_sender: true\n  security_protocol: PLAINTEXT\n", seeds, topic)
	if err := os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	ep, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(ctx, ep, GatewayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	g.Server.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/events", bytes.NewReader(fixtures.EventsNDJSON())))
	if w.Code != 202 {
		t.Fatalf("POST /events: %d %s", w.Code, w.Body)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := g.Close(cctx); err != nil { // drains the spool into Kafka
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := fixtures.RasaBytes()
	var got []*kgo.Record
	for len(got) < len(want) && cctx.Err() == nil {
		cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	// Order holds per sender (per partition); compare as sets of bytes.
	gotValues, wantValues := make([]string, len(got)), make([]string, len(want))
	for i, r := range got {
		gotValues[i] = string(r.Value)
		ev, err := event.Parse(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != ev.SenderID {
			t.Fatalf("record key %q, sender %q", r.Key, ev.SenderID)
		}
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h["RASA_ENVIRONMENT"] != "RASA_ENVIRONMENT_NOT_SET" || len(h["parley-event-id"]) != 36 {
			t.Fatalf("headers %v", h)
		}
	}
	for i, w := range want {
		wantValues[i] = string(w)
	}
	sort.Strings(gotValues)
	sort.Strings(wantValues)
	for i := range wantValues {
		if gotValues[i] != wantValues[i] {
			t.Fatalf("values differ:\n got %s\nwant %s", gotValues[i], wantValues[i])
		}
	}
}
