package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The consume benchmarks read n events and write each event's JSON as a
// line to out (io.Discard in `parley bench`): what a consumer program such
// as kcat -C or `parley consume` does, so the direct clients and the REST
// API are timed on the same work. Time runs from the first record to the
// n-th.

// sink writes the events a reader gets, one per line, and times them
// from the first.
type sink struct {
	w     *bufio.Writer
	n     int // events wanted
	got   int
	size  int64
	first time.Time
}

func newSink(out io.Writer, n int) *sink {
	return &sink{w: bufio.NewWriterSize(out, 256<<10), n: n}
}

// more reports whether events are still wanted.
func (s *sink) more() bool { return s.got < s.n }

// add writes one event's JSON, if still wanted.
func (s *sink) add(v []byte) {
	if s.got >= s.n {
		return
	}
	if s.got == 0 {
		s.first = time.Now()
	}
	s.w.Write(v)
	s.w.WriteByte('\n')
	s.size += int64(len(v))
	s.got++
}

// result flushes and reports, timed from since (zero: the first event).
func (s *sink) result(name string, since time.Time) Result {
	s.w.Flush()
	if since.IsZero() {
		since = s.first
	}
	return Result{Name: name, Events: s.got, Bytes: s.size, Duration: time.Since(since)}
}

// ConsumeKafka reads topic from the start with a plain franz-go group
// consumer.
func ConsumeKafka(ctx context.Context, opts []kgo.Opt, topic, group string, n int, out io.Writer) (Result, error) {
	cl, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	sk := newSink(out, n)
	for sk.more() {
		fs := cl.PollRecords(ctx, 500)
		if err := fs.Err0(); err != nil {
			return Result{}, fmt.Errorf("direct kafka consumer: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) { sk.add(r.Value) })
	}
	return sk.result("direct franz-go consumer", time.Time{}), nil
}

// ConsumeSQL reads the events table in id order, 500 rows a query, as a
// direct reader of the SQL broker's table would.
func ConsumeSQL(ctx context.Context, db *sql.DB, table string, n int, out io.Writer) (Result, error) {
	sk := newSink(out, n)
	var last int64 = -1
	start := time.Now()
	for sk.more() {
		rows, err := db.QueryContext(ctx, "SELECT id, data FROM "+table+" WHERE id > "+strconv.FormatInt(last, 10)+" ORDER BY id LIMIT 500")
		if err != nil {
			return Result{}, err
		}
		k := 0
		for rows.Next() && sk.more() {
			var data []byte
			if err := rows.Scan(&last, &data); err != nil {
				rows.Close()
				return Result{}, err
			}
			sk.add(data)
			k++
		}
		rows.Close()
		if k == 0 {
			return Result{}, fmt.Errorf("direct SQL reader: only %d events in %s", sk.got, table)
		}
	}
	return sk.result("direct SQL reader", start), nil
}

// consumerAPI is one consumer instance of parley's REST consumer API.
type consumerAPI struct {
	url, group string
	client     *http.Client
}

func newConsumerAPI(ctx context.Context, url, group, topic string) (*consumerAPI, error) {
	c := &consumerAPI{url: url, group: group, client: &http.Client{}}
	if err := c.do(ctx, "POST", "/consumers", `{"auto.offset.reset":"earliest","auto.commit.enable":"false"}`, nil); err != nil {
		return nil, err
	}
	if err := c.do(ctx, "POST", "/consumers/subscription", `{"topics":["`+topic+`"]}`, nil); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *consumerAPI) request(ctx context.Context, method, path, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("consumer-group", c.group)
	req.Header.Set("consumer-name", "bench")
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func (c *consumerAPI) do(ctx context.Context, method, path, body string, into io.Writer) error {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	return c.send(req, into)
}

// send sends req and copies a 2xx response's body to into (if not nil).
func (c *consumerAPI) send(req *http.Request, into io.Writer) error {
	method, path := req.Method, req.URL.Path
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("consumer API %s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if into != nil {
		_, err = io.Copy(into, resp.Body)
	}
	return err
}

func (c *consumerAPI) close() { _ = c.do(context.Background(), "DELETE", "/consumers", "", nil) }

// apiRecord is the part of a record a consumer program uses.
type apiRecord struct {
	Value json.RawMessage `json:"value"`
}

// ConsumeRecords reads n events with GET /consumers/records, decoding
// each response and writing the values. With valueOnly it asks for
// ?data=value as NDJSON, whose lines are the values: written as they come.
func ConsumeRecords(ctx context.Context, url, topic, group string, n int, valueOnly bool, out io.Writer) (Result, error) {
	c, err := newConsumerAPI(ctx, url, group, topic)
	if err != nil {
		return Result{}, err
	}
	defer c.close()
	path, name := "/consumers/records?timeout=1000", "consumer API records"
	if valueOnly {
		path, name = path+"&data=value", "consumer API records, NDJSON values"
	}
	sk := newSink(out, n)
	var body bytes.Buffer
	var recs []apiRecord
	for sk.more() {
		body.Reset()
		req, err := c.request(ctx, "GET", path, "")
		if err != nil {
			return Result{}, err
		}
		if valueOnly {
			req.Header.Set("Accept", "application/x-ndjson")
		}
		if err := c.send(req, &body); err != nil {
			return Result{}, err
		}
		if valueOnly {
			for line := range bytes.Lines(body.Bytes()) {
				sk.add(bytes.TrimSuffix(line, []byte("\n")))
			}
			continue
		}
		recs = recs[:0]
		if err := json.Unmarshal(body.Bytes(), &recs); err != nil {
			return Result{}, fmt.Errorf("records response: %w", err)
		}
		for _, r := range recs {
			sk.add(r.Value)
		}
	}
	return sk.result(name, time.Time{}), nil
}

// ConsumeSSE reads n events from GET /consumers/records/stream, decoding
// each data line and writing the value. With valueOnly it asks for
// ?data=value, whose data lines are the values: written as they come.
func ConsumeSSE(ctx context.Context, url, topic, group string, n int, valueOnly bool, out io.Writer) (Result, error) {
	c, err := newConsumerAPI(ctx, url, group, topic)
	if err != nil {
		return Result{}, err
	}
	defer c.close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path, name := "/consumers/records/stream", "consumer API SSE"
	if valueOnly {
		path, name = path+"?data=value", "consumer API SSE, data=value"
	}
	req, err := c.request(sctx, "GET", path, "")
	if err != nil {
		return Result{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return Result{}, fmt.Errorf("consumer API stream: %s", resp.Status)
	}
	rd := bufio.NewReaderSize(resp.Body, 1<<20)
	sk := newSink(out, n)
	var rec apiRecord
	for sk.more() {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return Result{}, fmt.Errorf("stream ended after %d events: %w", sk.got, err)
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if valueOnly {
			sk.add(bytes.TrimSuffix(data, []byte("\n")))
			continue
		}
		rec.Value = rec.Value[:0]
		if err := json.Unmarshal(data, &rec); err != nil {
			return Result{}, fmt.Errorf("stream record: %w", err)
		}
		sk.add(rec.Value)
	}
	return sk.result(name, time.Time{}), nil
}
