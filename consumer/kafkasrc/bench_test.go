package kafkasrc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/consumertest"
	"github.com/parleyhq/parley/consumer/kafkasrc"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// benchRecords is the size of the topic each mode reads in full.
const benchRecords = 200_000

var benchTopic struct {
	once  sync.Once
	topic string
	seeds []string
}

// benchSetup fills a 4-partition topic once with Rasa's bytes of the
// fixture events (about 400 bytes each), keyed by sender as parley's Kafka
// broker writes them.
func benchSetup(b *testing.B) (string, []string) {
	benchTopic.once.Do(func() {
		s := seeds(b)
		topic := newTopic(b, s, 4)
		cl, err := kgo.NewClient(kgo.SeedBrokers(s...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		var evs []event.Event
		for _, l := range fixtures.Events() {
			ev, err := event.Parse(l)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, ev)
		}
		ctx := context.Background()
		for i := range benchRecords {
			ev := evs[i%len(evs)]
			cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("%s-%d", ev.SenderID, i%64)), Value: ev.RasaJSON()}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		benchTopic.topic, benchTopic.seeds = topic, s
	})
	if benchTopic.topic == "" {
		b.Fatal("bench topic setup failed")
	}
	return benchTopic.topic, benchTopic.seeds
}

// BenchmarkThroughputVsDirect reads the whole topic three ways, each with
// a new consumer group: a franz-go group consumer (the baseline), the
// records endpoint, and the SSE stream, over loopback HTTP. Throughput is
// timed from the first record to the last, so that the group join is not
// counted, and reported with its ratio to the baseline (targets: records
// >= 0.5, sse >= 0.8). Clients only count records, as the baseline only
// counts them.
//
//	go test -run '^$' -bench ThroughputVsDirect -benchtime 3x ./consumer/kafkasrc/
func BenchmarkThroughputVsDirect(b *testing.B) {
	topic, s := benchSetup(b)
	src, err := kafkasrc.New(context.Background(), kafkasrc.Options{ClientOpts: []kgo.Opt{kgo.SeedBrokers(s...)}, Topic: topic})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close(context.Background())
	h, err := consumer.NewHandler(consumer.Options{Config: consumertest.Config(), Source: src})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	srv := httptest.NewServer(h)
	defer srv.Close()

	var direct, records, sse time.Duration
	for i := 0; b.Loop(); i++ {
		direct += readDirect(b, s, topic, fmt.Sprintf("bench-direct-%d-%d", time.Now().UnixNano(), i))
		records += readRecords(b, srv.URL, topic, fmt.Sprintf("bench-records-%d-%d", time.Now().UnixNano(), i))
		sse += readSSE(b, srv.URL, topic, fmt.Sprintf("bench-sse-%d-%d", time.Now().UnixNano(), i))
	}
	rate := func(d time.Duration) float64 { return float64(b.N*benchRecords) / d.Seconds() }
	b.ReportMetric(rate(direct), "direct-rec/s")
	b.ReportMetric(rate(records), "records-rec/s")
	b.ReportMetric(rate(sse), "sse-rec/s")
	b.ReportMetric(rate(records)/rate(direct), "records/direct")
	b.ReportMetric(rate(sse)/rate(direct), "sse/direct")
}

func readDirect(b *testing.B, seeds []string, topic, group string) time.Duration {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	var first time.Time
	for n < benchRecords {
		fs := cl.PollRecords(ctx, 500)
		if err := fs.Err0(); err != nil {
			b.Fatal(err)
		}
		if n == 0 && fs.NumRecords() > 0 {
			first = time.Now()
		}
		n += fs.NumRecords()
	}
	return time.Since(first)
}

func readRecords(b *testing.B, url, topic, group string) time.Duration {
	api := consumertest.NewAPI(b, url)
	c := api.Create(group, "c1", map[string]any{"auto.offset.reset": "earliest", "auto.commit.enable": "false"})
	defer c.Do("DELETE", "/consumers", nil)
	c.Subscribe(topic)
	req, err := http.NewRequest("GET", url+"/consumers/records?timeout=1000", nil)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range c.Headers() {
		req.Header.Set(k, v)
	}
	n := 0
	var first time.Time
	buf := bytes.NewBuffer(make([]byte, 0, 1<<20))
	for n < benchRecords {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("records: %d %v %s", resp.StatusCode, err, buf.Bytes())
		}
		k := bytes.Count(buf.Bytes(), []byte(`,"partition":`))
		if n == 0 && k > 0 {
			first = time.Now()
		}
		n += k
	}
	return time.Since(first)
}

func readSSE(b *testing.B, url, topic, group string) time.Duration {
	api := consumertest.NewAPI(b, url)
	c := api.Create(group, "c1", map[string]any{"auto.offset.reset": "earliest", "auto.commit.enable": "false"})
	defer c.Do("DELETE", "/consumers", nil)
	c.Subscribe(topic)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/consumers/records/stream", nil)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range c.Headers() {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReaderSize(resp.Body, 1<<20)
	n := 0
	var first time.Time
	for n < benchRecords {
		line, err := rd.ReadSlice('\n')
		if err == io.EOF || (err != nil && err != bufio.ErrBufferFull) {
			b.Fatalf("stream ended after %d records: %v", n, err)
		}
		if bytes.Equal(line, []byte("event: record\n")) {
			if n == 0 {
				first = time.Now()
			}
			n++
		}
	}
	return time.Since(first)
}
