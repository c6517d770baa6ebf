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

// ConsumeKafka reads topic from the start with a plain franz-go group
// consumer.
func ConsumeKafka(ctx context.Context, opts []kgo.Opt, topic, group string, n int, out io.Writer) (Result, error) {
	cl, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	w := bufio.NewWriterSize(out, 256<<10)
	var got int
	var size int64
	var first time.Time
	for got < n {
		fs := cl.PollRecords(ctx, 500)
		if err := fs.Err0(); err != nil {
			return Result{}, fmt.Errorf("direct kafka consumer: %w", err)
		}
		if got == 0 && fs.NumRecords() > 0 {
			first = time.Now()
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got < n {
				w.Write(r.Value)
				w.WriteByte('\n')
				size += int64(len(r.Value))
				got++
			}
		})
	}
	w.Flush()
	return Result{Name: "direct franz-go consumer", Events: got, Bytes: size, Duration: time.Since(first)}, nil
}

// ConsumeSQL reads the events table in id order, 500 rows a query, as a
// direct reader of the SQL broker's table would.
func ConsumeSQL(ctx context.Context, db *sql.DB, table string, n int, out io.Writer) (Result, error) {
	w := bufio.NewWriterSize(out, 256<<10)
	var got int
	var size int64
	var last int64 = -1
	start := time.Now()
	for got < n {
		rows, err := db.QueryContext(ctx, "SELECT id, data FROM "+table+" WHERE id > "+strconv.FormatInt(last, 10)+" ORDER BY id LIMIT 500")
		if err != nil {
			return Result{}, err
		}
		k := 0
		for rows.Next() && got < n {
			var data []byte
			if err := rows.Scan(&last, &data); err != nil {
				rows.Close()
				return Result{}, err
			}
			w.Write(data)
			w.WriteByte('\n')
			size += int64(len(data))
			got++
			k++
		}
		rows.Close()
		if k == 0 {
			return Result{}, fmt.Errorf("direct SQL reader: only %d events in %s", got, table)
		}
	}
	w.Flush()
	return Result{Name: "direct SQL reader", Events: got, Bytes: size, Duration: time.Since(start)}, nil
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
	w := bufio.NewWriterSize(out, 256<<10)
	var body bytes.Buffer
	var recs []apiRecord
	var got int
	var size int64
	var first time.Time
	for got < n {
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
		recs = recs[:0]
		if valueOnly {
			for line := range bytes.Lines(body.Bytes()) {
				recs = append(recs, apiRecord{Value: line[:len(line)-1]})
			}
		} else if err := json.Unmarshal(body.Bytes(), &recs); err != nil {
			return Result{}, fmt.Errorf("records response: %w", err)
		}
		if got == 0 && len(recs) > 0 {
			first = time.Now()
		}
		for _, r := range recs {
			if got < n {
				w.Write(r.Value)
				w.WriteByte('\n')
				size += int64(len(r.Value))
				got++
			}
		}
	}
	w.Flush()
	return Result{Name: name, Events: got, Bytes: size, Duration: time.Since(first)}, nil
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
	w := bufio.NewWriterSize(out, 256<<10)
	var got int
	var size int64
	var first time.Time
	var rec apiRecord
	for got < n {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return Result{}, fmt.Errorf("stream ended after %d events: %w", got, err)
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if got == 0 {
			first = time.Now()
		}
		if valueOnly {
			rec.Value = bytes.TrimSuffix(data, []byte("\n"))
		} else {
			rec.Value = rec.Value[:0]
			if err := json.Unmarshal(data, &rec); err != nil {
				return Result{}, fmt.Errorf("stream record: %w", err)
			}
		}
		w.Write(rec.Value)
		w.WriteByte('\n')
		size += int64(len(rec.Value))
		got++
	}
	w.Flush()
	return Result{Name: name, Events: got, Bytes: size, Duration: time.Since(first)}, nil
}
