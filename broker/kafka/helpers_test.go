package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

var topicSeq atomic.Int64

// newTopicName returns a topic name no other test of this run uses.
func newTopicName(prefix string) string {
	return fmt.Sprintf("parley-%s-%d-%d", prefix, os.Getpid(), topicSeq.Add(1))
}

// quietLogger discards logs, unless -v shows them with the test's output.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// newFake starts an in-process Kafka cluster for the test.
func newFake(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// createTopic creates a topic with kadm, as an operator would; the
// cluster's auto-creation is off.
func createTopic(t testing.TB, clientOpts []kgo.Opt, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	for {
		// A loaded single-broker KRaft cluster fences its broker for a
		// moment now and then, refusing topics with
		// INVALID_REPLICATION_FACTOR: try again until the deadline.
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond) // polling the cluster's state
	}
	// Wait until the brokers' metadata has it with a leader for every
	// partition: KRaft propagates new topics asynchronously.
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			ready := td.Err == nil && len(td.Partitions) == int(partitions)
			for _, p := range td.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if ready {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s did not appear in the metadata: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond) // polling: there is no metadata change notification
	}
}

// deleteTopic removes a test topic from a real cluster when the test ends.
func deleteTopic(t testing.TB, clientOpts []kgo.Opt, topic string) {
	t.Cleanup(func() {
		cl, err := kgo.NewClient(clientOpts...)
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, topic)
	})
}

// readTopic consumes topic from the start with a plain franz-go consumer
// until it has at least n records and has reached the end offsets it saw
// then, or until ctx ends. Records come partition by partition, each in
// offset order.
func readTopic(ctx context.Context, clientOpts []kgo.Opt, topic string, n int) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), clientOpts...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		// As consumers of exactly-once topics must; the markers that end
		// transactions are kept to see that the end was reached.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var out []*kgo.Record
	next := map[int32]int64{}
	for {
		if len(out) >= n {
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return out, nil
			}
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				if o.Offset > next[o.Partition] {
					done = false
				}
			})
			if done {
				return out, nil
			}
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, nil
		}
		if err := fs.Err0(); err != nil && err != context.Canceled {
			return out, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
}

// messages converts records for brokertest.
func messages(recs []*kgo.Record) []brokertest.Message {
	out := make([]brokertest.Message, len(recs))
	for i, r := range recs {
		m := brokertest.Message{Body: r.Value, Key: r.Key, Headers: map[string]string{}}
		for _, h := range r.Headers {
			m.Headers[h.Key] = string(h.Value)
		}
		m.ID = m.Headers[HeaderEventID]
		out[i] = m
	}
	return out
}

// target is a Kafka cluster the tests publish to: seeds and the client
// options to reach it (security), shared by the broker under test's Config
// and the plain franz-go clients that check its work.
type target struct {
	cfg  Config    // Seeds and security fields set
	opts []kgo.Opt // the same for a plain client
}

func fakeTarget(c *kfake.Cluster) target {
	return target{cfg: Config{Seeds: c.ListenAddrs(), SecurityProtocol: Plaintext}, opts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}}
}

// open opens the broker under test on a fresh topic of tg.
func (tg target) open(t testing.TB, partitions int32, edit func(*Config)) (*Broker, string) {
	t.Helper()
	topic := newTopicName("t")
	createTopic(t, tg.opts, topic, partitions)
	deleteTopic(t, tg.opts, topic)
	c := tg.cfg
	c.Topic = topic
	c.Linger = DefaultLinger
	if edit != nil {
		edit(&c)
	}
	b, err := Open(context.Background(), c, quietLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b, topic
}

// harness runs the conformance suite on tg: one partition without a key
// (global order), or several partitions keyed by sender.
func harness(tg target, partitions int32, bySender bool) brokertest.Harness {
	return harnessWith(tg, partitions, bySender, false)
}

// harnessWith is harness, with the transactional streams of exactly_once
// when exactlyOnce is set.
func harnessWith(tg target, partitions int32, bySender, exactlyOnce bool) brokertest.Harness {
	return brokertest.Harness{
		Features: brokertest.Features{GlobalOrder: partitions == 1, EventIDs: true, SenderKey: bySender},
		Open: func(t *testing.T) brokertest.Destination {
			b, topic := tg.open(t, partitions, func(c *Config) { c.PartitionBySender = bySender })
			var pb broker.Broker = b
			if exactlyOnce {
				pb = ExactlyOnce{b}
			}
			return brokertest.Destination{
				Broker: pb,
				Read: func(ctx context.Context, n int) ([]brokertest.Message, error) {
					recs, err := readTopic(ctx, tg.opts, topic, n)
					return messages(recs), err
				},
			}
		},
	}
}

// seqEvents makes n numbered events spread over senders.
func seqEvents(n, senders int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = brokertest.Seq(fmt.Sprintf("sender-%d", i%senders), i/senders)
	}
	return evs
}
