package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker/kafka"
	"github.com/parleyhq/parley/cli"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/testenv"
)

// runCLI runs parley with args in dir, stdin from in.
func runCLI(t *testing.T, dir string, in []byte, args ...string) (string, error) {
	t.Helper()
	t.Chdir(dir)
	var out bytes.Buffer
	cmd := cli.New()
	cmd.SetIn(bytes.NewReader(in))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// TestCLIPublishKafka runs `parley publish` on the fixtures with a Rasa
// endpoints.yml pointing at the real Kafka, then reads the topic with a
// plain franz-go consumer: Rasa's bytes, keys and headers.
func TestCLIPublishKafka(t *testing.T) {
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	topic := fmt.Sprintf("parley-cli-%d-%d", os.Getpid(), time.Now().UnixNano())
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if resp, err := adm.CreateTopic(ctx, 3, -1, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	defer adm.DeleteTopics(context.Background(), topic) //nolint:errcheck

	dir := t.TempDir()
	yml := fmt.Sprintf("event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  partition_by_sender: True\n  security_protocol: PLAINTEXT\n", seeds, topic)
	if err := os.WriteFile(dir+"/endpoints.yml", []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RASA_ENVIRONMENT", "staging")
	out, err := runCLI(t, dir, fixtures.EventsNDJSON(), "publish")
	if err != nil {
		t.Fatalf("parley publish: %v\n%s", err, out)
	}
	want := fixtures.RasaBytes()
	if !strings.Contains(out, fmt.Sprintf("published %d events to kafka", len(want))) {
		t.Fatalf("parley publish printed %q", out)
	}

	// Each sender's events, in order, as Rasa would publish them.
	wantBySender := map[string][]string{}
	for _, b := range want {
		ev, err := event.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		wantBySender[ev.SenderID] = append(wantBySender[ev.SenderID], string(b))
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	gotBySender := map[string][]string{}
	ids := map[string]bool{}
	for n := 0; n < len(want); {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", n, len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			ev, err := event.Parse(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != ev.SenderID {
				t.Errorf("key %q for sender %q", r.Key, ev.SenderID)
			}
			if want := kafka.ConsistentRandomPartition(r.Key, 3); int(r.Partition) != want {
				t.Errorf("sender %q on partition %d, Rasa's librdkafka would use %d", r.Key, r.Partition, want)
			}
			hdr := map[string]string{}
			for _, h := range r.Headers {
				hdr[h.Key] = string(h.Value)
			}
			if hdr[kafka.HeaderRasaEnvironment] != "staging" {
				t.Errorf("RASA_ENVIRONMENT header %q, want staging", hdr[kafka.HeaderRasaEnvironment])
			}
			id := hdr[kafka.HeaderEventID]
			if id == "" || ids[id] {
				t.Errorf("parley-event-id %q missing or repeated", id)
			}
			ids[id] = true
			gotBySender[ev.SenderID] = append(gotBySender[ev.SenderID], string(r.Value))
		})
	}
	for s, w := range wantBySender {
		if strings.Join(gotBySender[s], "\n") != strings.Join(w, "\n") {
			t.Errorf("sender %s: records differ from events.rasa.ndjson:\n got %q\nwant %q", s, gotBySender[s], w)
		}
	}
}

// TestCLIConfigCheckKafka: `parley config check` shows the PLAINTEXT
// fallback warning and masks the SASL password, without connecting.
func TestCLIConfigCheckKafka(t *testing.T) {
	dir := t.TempDir()
	yml := "event_broker:\n  type: kafka\n  url: nowhere.invalid:9092\n  sasl_password: hunter2\n"
	if err := os.WriteFile(dir+"/endpoints.yml", []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, dir, nil, "config", "check")
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	for _, want := range []string{"security_protocol: not set and no sasl_username given: using PLAINTEXT", "sasl_password: ignored with security_protocol PLAINTEXT"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("config check shows the password:\n%s", out)
	}

	if err := os.WriteFile(dir+"/endpoints.yml", []byte("event_broker:\n  type: kafka\n  topic: t\n  security_protocol: KERBEROS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, dir, nil, "config", "check")
	if err == nil {
		t.Fatalf("config check accepted a bad section:\n%s", out)
	}
	for _, want := range []string{"endpoints.yml:2: event_broker.url: is required", `endpoints.yml:4: event_broker.security_protocol: "KERBEROS" is not a valid security protocol`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
