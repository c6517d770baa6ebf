package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// The tests in this file run against kfake and against the real Kafka.

// fixtureEvents returns the shared fixtures as events with IDs.
func fixtureEvents(t testing.TB) []event.Event {
	evs, _ := brokertest.FixtureEvents(t)
	return evs
}

// testFixtureBytes publishes the fixtures and reads them back with a plain
// consumer: the values must be events.rasa.ndjson byte for byte, the key
// the sender_id when partition_by_sender, and the headers Rasa's
// RASA_ENVIRONMENT (for each way of setting it) then parley-event-id.
func testFixtureBytes(t *testing.T, tg target) {
	want := fixtures.RasaBytes()
	envCases := []struct {
		name    string
		set     *string
		wantEnv *string // nil: no header
	}{
		{"environment unset", nil, ptr(RasaEnvironmentNotSet)},
		{"environment set", ptr("production"), ptr("production")},
		{"environment empty", ptr(""), nil},
	}
	for _, ec := range envCases {
		for _, bySender := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/partition_by_sender=%v", ec.name, bySender), func(t *testing.T) {
				t.Setenv("RASA_ENVIRONMENT", "")
				if ec.set == nil {
					os.Unsetenv("RASA_ENVIRONMENT")
				} else {
					t.Setenv("RASA_ENVIRONMENT", *ec.set)
				}
				b, topic := tg.open(t, 1, func(c *Config) { c.PartitionBySender = bySender })
				evs := fixtureEvents(t)
				ctx := context.Background()
				for _, chunk := range [][2]int{{0, 1}, {1, 40}, {40, len(evs)}} {
					if err := b.Publish(ctx, evs[chunk[0]:chunk[1]]...); err != nil {
						t.Fatalf("Publish: %v", err)
					}
				}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				recs, err := readTopic(rctx, tg.opts, topic, len(evs))
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != len(want) {
					t.Fatalf("read %d records, want %d", len(recs), len(want))
				}
				var got bytes.Buffer
				for i, r := range recs {
					got.Write(r.Value)
					got.WriteByte('\n')
					if !bytes.Equal(r.Value, want[i]) {
						t.Fatalf("record %d value:\n got %s\nwant %s", i, r.Value, want[i])
					}
					if bySender {
						if r.Key == nil || string(r.Key) != evs[i].SenderID {
							t.Errorf("record %d key %q, want sender %q", i, r.Key, evs[i].SenderID)
						}
					} else if r.Key != nil {
						t.Errorf("record %d has key %q; Rasa sends none without partition_by_sender", i, r.Key)
					}
					var hdrs []string
					for _, h := range r.Headers {
						hdrs = append(hdrs, h.Key+"="+string(h.Value))
					}
					wantHdrs := []string{HeaderEventID + "=" + evs[i].ID}
					if ec.wantEnv != nil {
						wantHdrs = append([]string{HeaderRasaEnvironment + "=" + *ec.wantEnv}, wantHdrs...)
					}
					if strings.Join(hdrs, "|") != strings.Join(wantHdrs, "|") {
						t.Errorf("record %d headers %q, want %q", i, hdrs, wantHdrs)
					}
				}
				if !bytes.Equal(got.Bytes(), fixtures.RasaNDJSON()) {
					t.Errorf("the values joined by newlines differ from events.rasa.ndjson")
				}
			})
		}
	}
}

// testOrderPerSenderPartitioned publishes interleaved conversations to a
// multi-partition topic with partition_by_sender, in concurrent uneven
// batches: each sender's events must sit on the one partition librdkafka
// would choose for its key, in order.
func testOrderPerSenderPartitioned(t *testing.T, tg target) {
	const partitions, senders, perSender = 6, 24, 150
	b, topic := tg.open(t, partitions, func(c *Config) { c.PartitionBySender = true })
	evs := seqEvents(senders*perSender, senders)
	// Four publishers, each with its own senders, so that each sender's
	// calls are sequential as a conversation's are.
	const publishers = 4
	errc := make(chan error, publishers)
	for p := 0; p < publishers; p++ {
		go func() {
			var mine []event.Event
			for i, ev := range evs {
				if (i%senders)%publishers == p {
					mine = append(mine, ev)
				}
			}
			for i, size := 0, 1; i < len(mine); i, size = i+size, size%37+1 {
				if err := b.Publish(context.Background(), mine[i:min(i+size, len(mine))]...); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for p := 0; p < publishers; p++ {
		if err := <-errc; err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := readTopic(ctx, tg.opts, topic, len(evs))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(evs) {
		t.Fatalf("read %d records, want %d", len(recs), len(evs))
	}
	next := map[string]int{}
	used := map[int32]bool{}
	for _, r := range recs {
		ev, err := event.Parse(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		seq, _ := ev.Get("seq")
		n, _ := seq.Float()
		if int(n) != next[ev.SenderID] {
			t.Fatalf("sender %s: seq %d after %d", ev.SenderID, int(n), next[ev.SenderID]-1)
		}
		next[ev.SenderID]++
		if want := ConsistentRandomPartition(r.Key, partitions); int(r.Partition) != want {
			t.Fatalf("sender %s on partition %d, librdkafka would use %d", r.Key, r.Partition, want)
		}
		used[r.Partition] = true
	}
	if len(used) < 3 {
		t.Errorf("%d senders used only partitions %v", senders, used)
	}
}

// testMissingTopic: a missing topic does not fail Open (issue 21): Ping
// and Publish say the topic is missing, with a retriable error, and once
// the topic is created the next publish goes through.
func testMissingTopic(t *testing.T, tg target) {
	c := tg.cfg
	c.Topic = newTopicName("missing")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, c, quietLogger(t))
	if err != nil {
		t.Fatalf("Open on a missing topic = %v, want success (publishes wait for the topic)", err)
	}
	defer b.Close(ctx)
	want := fmt.Sprintf("kafka: topic %q does not exist (create it, or set create_topic: true)", c.Topic)
	if err := b.Ping(ctx); !errors.Is(err, ErrTopicNotFound) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Ping = %v, want ErrTopicNotFound saying %q", err, want)
	}
	err = b.Publish(ctx, seqEvents(2, 1)...)
	if !errors.Is(err, ErrTopicNotFound) || ctx.Err() != nil {
		t.Fatalf("Publish = %v, want ErrTopicNotFound", err)
	}
	if errors.Is(err, broker.ErrPermanent) {
		t.Fatal("a missing topic can be created: the error must not be permanent")
	}
	createTopic(t, tg.opts, c.Topic, 1)
	for {
		err := b.Publish(ctx, seqEvents(2, 1)...)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrTopicNotFound) || ctx.Err() != nil {
			t.Fatalf("Publish after the topic was created = %v", err)
		}
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping once the topic exists = %v", err)
	}
	recs, err := readTopic(ctx, tg.opts, c.Topic, 2)
	if err != nil || len(recs) != 2 {
		t.Fatalf("read %d records (%v), want 2", len(recs), err)
	}
}

// testCreateTopic: create_topic makes the topic with the configured
// partitions.
func testCreateTopic(t *testing.T, tg target) {
	c := tg.cfg
	c.Topic = newTopicName("created")
	c.CreateTopic, c.Partitions = true, 4
	deleteTopic(t, tg.opts, c.Topic)
	ctx := context.Background()
	b, err := Open(ctx, c, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if err := b.Publish(ctx, seqEvents(10, 5)...); err != nil {
		t.Fatal(err)
	}
	meta, err := b.adm.Metadata(ctx, c.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(meta.Topics[c.Topic].Partitions); n != 4 {
		t.Fatalf("created topic has %d partitions, want 4", n)
	}
	// A second Open finds it and leaves it alone.
	b2, err := Open(ctx, c, quietLogger(t))
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	b2.Close(ctx)
}

// testWrongPassword: refused credentials fail Open with a message that
// says authentication failed and which keys to check.
func testWrongPassword(t *testing.T, tg target) {
	c := tg.cfg
	c.SASLPassword = "wrong-" + c.SASLPassword
	c.Topic = newTopicName("auth")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, c, quietLogger(t))
	if err == nil {
		b.Close(ctx)
		t.Fatal("Open succeeded with a wrong password")
	}
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("Open = %v, want ErrAuthentication", err)
	}
	t.Logf("wrong password: %v", err)
	for _, want := range []string{"authentication failed", c.SASLUsername, "sasl_password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// publishAndRead publishes a few events and reads them back, for the
// security protocol tests.
func publishAndRead(t *testing.T, b *Broker, readOpts []kgo.Opt, topic string) {
	t.Helper()
	evs := seqEvents(20, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Publish(ctx, evs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	recs, err := readTopic(ctx, readOpts, topic, len(evs))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(evs) {
		t.Fatalf("read %d records, want %d", len(recs), len(evs))
	}
	for i, r := range recs {
		if !bytes.Equal(r.Value, evs[i].RasaJSON()) {
			t.Fatalf("record %d: %s, want %s", i, r.Value, evs[i].RasaJSON())
		}
	}
}
