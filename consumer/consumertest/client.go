package consumertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// API is a test client of the consumer API.
type API struct {
	T     testing.TB
	URL   string
	Token string
	HTTP  *http.Client
}

// NewAPI returns a client of the API at url.
func NewAPI(t testing.TB, url string) *API {
	return &API{T: t, URL: url, HTTP: &http.Client{Timeout: 20 * time.Second}}
}

// Response is an HTTP response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrorCode returns the error_code of an error body (0 if none).
func (r Response) ErrorCode() int {
	var e struct {
		Code int `json:"error_code"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Code
}

func (r Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// Do sends a request; body is JSON-encoded unless it is a string or
// []byte.
func (a *API) Do(method, path string, header map[string]string, body any) Response {
	a.T.Helper()
	return a.DoContext(context.Background(), method, path, header, body)
}

// DoContext is Do with a context.
func (a *API) DoContext(ctx context.Context, method, path string, header map[string]string, body any) Response {
	a.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.T.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+path, rd)
	if err != nil {
		a.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		a.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.T.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// Consumer is a consumer instance reached through Mix's paths.
type Consumer struct {
	API         *API
	Group, Name string
}

// Consumer returns a handle on instance group/name (not created).
func (a *API) Consumer(group, name string) *Consumer {
	return &Consumer{API: a, Group: group, Name: name}
}

// Create creates the instance with config (may be nil) and fails the test
// unless it is created.
func (a *API) Create(group, name string, config map[string]any) *Consumer {
	a.T.Helper()
	c := a.Consumer(group, name)
	if r := c.Do("POST", "/consumers", config); r.Status != http.StatusNoContent {
		a.T.Fatalf("create consumer %s/%s: %s", group, name, r)
	}
	return c
}

// Headers are the Mix headers naming the instance.
func (c *Consumer) Headers() map[string]string {
	return map[string]string{"consumer-group": c.Group, "consumer-name": c.Name}
}

// Do sends a request naming the instance.
func (c *Consumer) Do(method, path string, body any) Response {
	c.API.T.Helper()
	return c.API.Do(method, path, c.Headers(), body)
}

// Must sends a request and fails the test unless the status is want.
func (c *Consumer) Must(want int, method, path string, body any) Response {
	c.API.T.Helper()
	r := c.Do(method, path, body)
	if r.Status != want {
		c.API.T.Fatalf("%s %s (%s/%s): got %s, want %d", method, path, c.Group, c.Name, r, want)
	}
	return r
}

// Subscribe subscribes to topics.
func (c *Consumer) Subscribe(topics ...string) {
	c.API.T.Helper()
	c.Must(http.StatusNoContent, "POST", "/consumers/subscription", map[string]any{"topics": topics})
}

// Record is a record as the API returns it.
type Record struct {
	Topic     string            `json:"topic"`
	Key       *string           `json:"key"`
	Value     json.RawMessage   `json:"value"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp *int64            `json:"timestamp"`
	Headers   map[string]string `json:"headers"`
}

// Seq returns the record's event's seq field (brokertest.Seq), or -1.
func (r Record) Seq() int {
	var v struct {
		Seq *int `json:"seq"`
	}
	if json.Unmarshal(r.Value, &v) != nil || v.Seq == nil {
		return -1
	}
	return *v.Seq
}

// Records reads records with the query string q (e.g. "timeout=1000").
func (c *Consumer) Records(q string) []Record {
	c.API.T.Helper()
	r := c.Must(http.StatusOK, "GET", "/consumers/records?"+q, nil)
	var recs []Record
	if err := json.Unmarshal(r.Body, &recs); err != nil {
		c.API.T.Fatalf("records: %v: %s", err, r.Body)
	}
	return recs
}

// Assignment returns the instance's partitions.
func (c *Consumer) Assignment() []int32 {
	c.API.T.Helper()
	r := c.Must(http.StatusOK, "GET", "/consumers/assignments", nil)
	var b struct {
		Partitions []struct {
			Partition int32 `json:"partition"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		c.API.T.Fatal(err)
	}
	var out []int32
	for _, p := range b.Partitions {
		out = append(out, p.Partition)
	}
	return out
}

// Commit commits the offsets of the last records processed per partition.
func (c *Consumer) Commit(topic string, last map[int32]int64) {
	c.API.T.Helper()
	var offs []map[string]any
	for p, o := range last {
		offs = append(offs, map[string]any{"topic": topic, "partition": p, "offset": o})
	}
	c.Must(http.StatusNoContent, "POST", "/consumers/offsets", map[string]any{"offsets": offs})
}

// Event is one Server-Sent Event.
type Event struct {
	ID, Type string
	Data     []byte
}

// Stream is an open SSE stream.
type Stream struct {
	Resp *http.Response
	// Wait bounds how long Next waits for an event (heartbeats do not
	// count) before it drops the connection and reports the end: a
	// missing event fails the test instead of hanging it. Default 20s.
	Wait time.Duration
	// Comments holds the comment lines read so far (": heartbeat", ":
	// offset reset ...").
	Comments []string
	cancel   context.CancelFunc
	sc       *bufio.Scanner
}

// Stream opens the instance's SSE stream, resuming after lastEventID if
// it is not empty.
func (c *Consumer) Stream(lastEventID string) *Stream {
	c.API.T.Helper()
	return c.StreamQuery("", lastEventID)
}

// StreamQuery is Stream with a query string (without the "?").
func (c *Consumer) StreamQuery(query, lastEventID string) *Stream {
	c.API.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	url := c.API.URL + "/consumers/records/stream"
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		c.API.T.Fatal(err)
	}
	for k, v := range c.Headers() {
		req.Header.Set(k, v)
	}
	if c.API.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.API.Token)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	timer := time.AfterFunc(20*time.Second, cancel) // the response headers
	resp, err := (&http.Client{}).Do(req)
	timer.Stop()
	if err != nil {
		cancel()
		c.API.T.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		c.API.T.Fatalf("stream: %d %s", resp.StatusCode, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &Stream{Resp: resp, Wait: 20 * time.Second, cancel: cancel, sc: sc}
}

// Next returns the next event (comments skipped), or false at the end.
func (s *Stream) Next() (Event, bool) {
	timer := time.AfterFunc(s.Wait, s.cancel)
	defer timer.Stop()
	var ev Event
	has := false
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if has {
				return ev, true
			}
		case strings.HasPrefix(line, ":"):
			s.Comments = append(s.Comments, line)
		case strings.HasPrefix(line, "id: "):
			ev.ID, has = line[4:], true
		case strings.HasPrefix(line, "event: "):
			ev.Type, has = line[7:], true
		case strings.HasPrefix(line, "data: "):
			ev.Data, has = append(ev.Data, line[6:]...), true
		}
	}
	return ev, false
}

// WaitComment reads until a comment line starting with prefix (false at
// the end of the stream or after Wait). Events read meanwhile are dropped.
func (s *Stream) WaitComment(prefix string) bool {
	timer := time.AfterFunc(s.Wait, s.cancel)
	defer timer.Stop()
	for s.sc.Scan() {
		if line := s.sc.Text(); strings.HasPrefix(line, prefix) {
			s.Comments = append(s.Comments, line)
			return true
		}
	}
	return false
}

// Close drops the connection.
func (s *Stream) Close() {
	s.cancel()
	s.Resp.Body.Close()
}
