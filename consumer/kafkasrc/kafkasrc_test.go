package kafkasrc_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/consumertest"
	"github.com/parleyhq/parley/consumer/kafkasrc"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/testenv"
)

var seq atomic.Int64

// newTopic creates a topic with partitions partitions, deleted after the
// test.
func newTopic(t testing.TB, seeds []string, partitions int32) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	topic := fmt.Sprintf("parley-consumer-test-%d-%d", time.Now().UnixNano(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		cl.Close()
		t.Fatalf("create topic: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm.DeleteTopics(ctx, topic)
		cl.Close()
	})
	// CreateTopics answers before every broker's metadata has the topic.
	consumertest.Eventually(t, 30*time.Second, "the new topic in the metadata", func() bool {
		tds, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false
		}
		td, ok := tds[topic]
		if !ok || td.Err != nil || len(td.Partitions) != int(partitions) {
			return false
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
		return true
	})
	return topic
}

func seeds(t testing.TB) []string {
	return strings.Split(testenv.Get(t, "PARLEY_KAFKA_SEEDS"), ",")
}

// producer writes events as parley's Kafka broker does: the sender_id as
// the key, Rasa's bytes as the value.
func producer(t testing.TB, seeds []string, topic string) func(t *testing.T, evs []event.Event) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return func(t *testing.T, evs []event.Event) {
		rs := make([]*kgo.Record, len(evs))
		for i, ev := range evs {
			rs[i] = &kgo.Record{Key: []byte(ev.SenderID), Value: ev.RasaJSON(), Headers: []kgo.RecordHeader{{Key: "RASA_ENVIRONMENT", Value: []byte("test")}}}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func backend(t *testing.T, partitions int32) consumertest.Backend {
	s := seeds(t)
	topic := newTopic(t, s, partitions)
	return consumertest.Backend{
		Topic: topic,
		Open: func(t *testing.T) consumer.Source {
			src, err := kafkasrc.New(context.Background(), kafkasrc.Options{ClientOpts: []kgo.Opt{kgo.SeedBrokers(s...)}, Topic: topic})
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
		Produce: producer(t, s, topic),
	}
}

func TestSuiteKafka(t *testing.T) {
	consumertest.Run(t, consumertest.Harness{
		Partitions: 2,
		Setup:      func(t *testing.T) consumertest.Backend { return backend(t, 2) },
	})
}

// TestHeadersAndUnknownTopic checks Kafka headers reach the records and
// that unknown topics are refused.
func TestHeadersAndUnknownTopic(t *testing.T) {
	b := backend(t, 1)
	env := consumertest.Start(t, b, consumertest.Config())
	c := env.API.Create("h", "c1", map[string]any{"auto.offset.reset": "earliest"})
	if r := c.Do("POST", "/consumers/subscription", map[string]any{"topics": []string{"no-such-topic-" + b.Topic}}); r.Status != 404 || r.ErrorCode() != consumer.CodeTopicNotFound {
		t.Fatalf("subscribe to an unknown topic: %s", r)
	}
	if r := env.API.Do("GET", "/partitions/7/offsets?topic="+b.Topic, nil, nil); r.Status != 404 || r.ErrorCode() != consumer.CodePartitionNotFound {
		t.Fatalf("offsets of an unknown partition: %s", r)
	}
	c.Subscribe(b.Topic)
	b.Produce(t, consumertest.Events(0, 1))
	recs := consumertest.ReadN(t, c, 1)
	if recs[0].Headers["RASA_ENVIRONMENT"] != "test" {
		t.Fatalf("headers %v", recs[0].Headers)
	}
}

// TestAbortedTransactionNotRead: what an exactly-once parley aborted (a
// crashed or fenced producer's transaction) never reaches a consumer; the
// source reads read_committed.
func TestAbortedTransactionNotRead(t *testing.T) {
	b := backend(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds(t)...), kgo.DefaultProduceTopic(b.Topic),
		kgo.TransactionalID(fmt.Sprintf("parley-test-%d", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, end := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		ev := consumertest.Events(i, 1)[0]
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(ev.SenderID), Value: ev.RasaJSON()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	b.Produce(t, consumertest.Events(2, 1))
	env := consumertest.Start(t, b, consumertest.Config())
	c := env.API.Create("rc", "c1", map[string]any{"auto.offset.reset": "earliest"})
	c.Subscribe(b.Topic)
	recs := consumertest.ReadN(t, c, 2)
	if len(recs) != 2 || recs[0].Seq() != 1 || recs[1].Seq() != 2 {
		seqs := make([]int, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq()
		}
		t.Fatalf("read events %v, want [1 2] (event 0 was in an aborted transaction)", seqs)
	}
}
