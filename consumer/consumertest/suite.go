// Package consumertest is the conformance suite of the consumer API's
// sources: every source (Kafka, SQL on SQLite and PostgreSQL) runs the
// same scenarios through the HTTP API, as brokertest does for brokers.
package consumertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/event"
)

// Harness describes a source under test.
type Harness struct {
	// Partitions is the number of partitions of the topics Setup makes.
	Partitions int
	// Setup makes a new, empty topic (or table) for one test.
	Setup func(t *testing.T) Backend
}

// Backend is one test's topic.
type Backend struct {
	Topic string
	// Open opens a source on the topic's storage. It is called again
	// after the previous source is closed, to restart.
	Open func(t *testing.T) consumer.Source
	// Produce writes events and returns once readers can see them.
	// Events of one sender stay in order (one partition).
	Produce func(t *testing.T, evs []event.Event)
}

// Env is a running API over a backend.
type Env struct {
	T       *testing.T
	B       Backend
	Src     consumer.Source
	Handler *consumer.Handler
	Server  *httptest.Server
	API     *API
	Reg     *prometheus.Registry
	Config  consumer.Config
}

// Start opens the backend's source and serves the API over it.
func Start(t *testing.T, b Backend, cfg consumer.Config) *Env {
	e := &Env{T: t, B: b, Config: cfg}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *Env) start() {
	e.T.Helper()
	e.Src = e.B.Open(e.T)
	e.Reg = prometheus.NewRegistry()
	h, err := consumer.NewHandler(consumer.Options{Config: e.Config, Source: e.Src, Registerer: e.Reg})
	if err != nil {
		e.T.Fatal(err)
	}
	e.Handler = h
	e.Server = httptest.NewServer(h)
	e.API = NewAPI(e.T, e.Server.URL)
}

func (e *Env) stop() {
	if e.Server == nil {
		return
	}
	e.Server.CloseClientConnections()
	e.Server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Handler.Close(ctx); err != nil {
		e.T.Errorf("closing handler: %v", err)
	}
	if c, ok := e.Src.(interface{ Close(context.Context) error }); ok {
		if err := c.Close(ctx); err != nil {
			e.T.Errorf("closing source: %v", err)
		}
	}
	e.Server = nil
}

// Restart closes the handler and the source and opens new ones on the
// same storage, as a process restart would.
func (e *Env) Restart() {
	e.T.Helper()
	e.stop()
	e.start()
}

// Gauge returns the value of a gauge of the API's registry.
func (e *Env) Gauge(name string) float64 {
	mfs, err := e.Reg.Gather()
	if err != nil {
		e.T.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) > 0 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	return 0
}

// Events returns n numbered events from several senders.
func Events(from, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = brokertest.Seq(fmt.Sprintf("user-%d", (from+i)%7), from+i)
	}
	return evs
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReadN reads from c until it has n records, failing after 60s.
func ReadN(t testing.TB, c *Consumer, n int) []Record {
	t.Helper()
	var out []Record
	deadline := time.Now().Add(60 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: read %d records of %d in 60s", c.Group, c.Name, len(out), n)
		}
		out = append(out, c.Records("timeout=1000")...)
	}
	return out
}

// Seqs returns the records' seq numbers, sorted, failing on a duplicate.
func Seqs(t testing.TB, recs []Record) []int {
	t.Helper()
	var s []int
	for _, r := range recs {
		s = append(s, r.Seq())
	}
	slices.Sort(s)
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			t.Fatalf("record seq %d delivered twice", s[i])
		}
	}
	return s
}

func seqRange(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// checkPartitionOrder fails unless each partition's records come in
// offset order.
func checkPartitionOrder(t testing.TB, recs []Record) {
	t.Helper()
	last := map[int32]int64{}
	for _, r := range recs {
		if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
			t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
		}
		last[r.Partition] = r.Offset
	}
}

// Config is the configuration the suite runs with: the default one,
// without rate limiting (the suite polls faster than ten requests a
// second).
func Config() consumer.Config {
	c := consumer.DefaultConfig()
	c.RateLimit = 0
	return c
}

var earliest = map[string]any{"auto.offset.reset": "earliest", "auto.commit.enable": "false"}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("ReadEventsAsProduced", func(t *testing.T) { testRead(t, h) })
	t.Run("GroupMembersSplitPartitions", func(t *testing.T) { testGroupSplit(t, h) })
	t.Run("CommitsSurviveRestart", func(t *testing.T) { testCommitRestart(t, h) })
	t.Run("SSEResumesWithoutLossOrDuplicates", func(t *testing.T) { testSSEResume(t, h, false) })
	t.Run("SSEReconnectBeforeOldStreamEnds", func(t *testing.T) { testSSEResume(t, h, true) })
	t.Run("LongPollReturnsWhenRecordsArrive", func(t *testing.T) { testLongPoll(t, h) })
	t.Run("SeekAndPartitionOffsets", func(t *testing.T) { testSeek(t, h) })
	t.Run("GroupsBelongToClients", func(t *testing.T) { testGroupsBelongToClients(t, h) })
	for _, policy := range []string{"earliest", "latest", "none"} {
		t.Run("OutOfRange/"+policy, func(t *testing.T) { testOutOfRange(t, h, policy) })
	}
}

func testRead(t *testing.T, h Harness) {
	b := h.Setup(t)
	env := Start(t, b, Config())
	c := env.API.Create("readers", "c1", earliest)
	c.Subscribe(b.Topic)
	evs := Events(0, 25)
	b.Produce(t, evs)
	recs := ReadN(t, c, len(evs))
	if got, want := Seqs(t, recs), seqRange(0, 25); !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}
	checkPartitionOrder(t, recs)
	bySeq := map[int]event.Event{}
	for _, ev := range evs {
		bySeq[int(mustSeq(ev))] = ev
	}
	for _, r := range recs {
		ev := bySeq[r.Seq()]
		want, err := event.Parse(ev.RasaJSON())
		if err != nil {
			t.Fatal(err)
		}
		got, err := event.Parse(r.Value)
		if err != nil {
			t.Fatalf("record value is not an event: %v: %s", err, r.Value)
		}
		if !event.Equal(got.Value(), want.Value()) {
			t.Fatalf("record value\n got %s\nwant %s", r.Value, ev.RasaJSON())
		}
		if r.Topic != b.Topic {
			t.Fatalf("record topic %q, want %q", r.Topic, b.Topic)
		}
		if r.Key == nil || *r.Key != ev.SenderID {
			t.Fatalf("record key %v, want %q", r.Key, ev.SenderID)
		}
		if r.Timestamp == nil || *r.Timestamp <= 0 {
			t.Fatalf("record timestamp %v", r.Timestamp)
		}
	}
	if more := c.Records("timeout=200"); len(more) != 0 {
		t.Fatalf("%d records after the end", len(more))
	}
}

func mustSeq(ev event.Event) int64 {
	v, _ := ev.Get("seq")
	f, _ := v.Float()
	return int64(f)
}

// waitAssigned waits until the consumers hold every partition between
// them, each at least one when there are enough.
func waitAssigned(t *testing.T, partitions int, cs ...*Consumer) [][]int32 {
	var got [][]int32
	Eventually(t, 60*time.Second, "the group to assign every partition", func() bool {
		got = got[:0]
		total := 0
		for _, c := range cs {
			a := c.Assignment()
			got = append(got, a)
			total += len(a)
			if len(a) == 0 && partitions >= len(cs) {
				return false
			}
		}
		return total == partitions
	})
	return got
}

func testGroupSplit(t *testing.T, h Harness) {
	b := h.Setup(t)
	env := Start(t, b, Config())
	c1 := env.API.Create("split", "c1", earliest)
	c2 := env.API.Create("split", "c2", earliest)
	c1.Subscribe(b.Topic)
	c2.Subscribe(b.Topic)
	assigned := waitAssigned(t, h.Partitions, c1, c2)

	evs := Events(0, 60)
	b.Produce(t, evs)
	var r1, r2 []Record
	deadline := time.Now().Add(60 * time.Second)
	for len(r1)+len(r2) < len(evs) {
		if time.Now().After(deadline) {
			t.Fatalf("read %d+%d records of %d", len(r1), len(r2), len(evs))
		}
		r1 = append(r1, c1.Records("timeout=200")...)
		r2 = append(r2, c2.Records("timeout=200")...)
	}
	if got := Seqs(t, append(slices.Clone(r1), r2...)); !slices.Equal(got, seqRange(0, len(evs))) {
		t.Fatalf("the group read %v", got)
	}
	for i, rs := range [][]Record{r1, r2} {
		for _, r := range rs {
			if !slices.Contains(assigned[i], r.Partition) {
				t.Fatalf("consumer %d read partition %d, assigned %v", i+1, r.Partition, assigned[i])
			}
		}
	}
	if h.Partitions >= 2 && (len(r1) == 0 || len(r2) == 0) {
		t.Fatalf("one member read nothing: %d and %d records", len(r1), len(r2))
	}

	// A second group reads everything again, on its own.
	g2 := env.API.Create("other-group", "c1", earliest)
	g2.Subscribe(b.Topic)
	if got := Seqs(t, ReadN(t, g2, len(evs))); !slices.Equal(got, seqRange(0, len(evs))) {
		t.Fatalf("second group read %v", got)
	}

	if h.Partitions == 1 {
		// The member without the partition takes over when the owner
		// leaves, from the group's committed offset.
		owner, other, ownerRecs := c1, c2, r1
		if len(r2) > 0 {
			owner, other, ownerRecs = c2, c1, r2
		}
		half := ownerRecs[len(ownerRecs)/2-1]
		owner.Commit(b.Topic, map[int32]int64{0: half.Offset})
		owner.Must(http.StatusNoContent, "DELETE", "/consumers", nil)
		waitAssigned(t, 1, other)
		rest := ReadN(t, other, len(ownerRecs)/2)
		if got, want := Seqs(t, rest), Seqs(t, ownerRecs[len(ownerRecs)/2:]); !slices.Equal(got, want) {
			t.Fatalf("after the rebalance read %v, want %v", got, want)
		}
	}
}

func testCommitRestart(t *testing.T, h Harness) {
	b := h.Setup(t)
	env := Start(t, b, Config())
	c := env.API.Create("durable", "c1", earliest)
	c.Subscribe(b.Topic)
	evs := Events(0, 30)
	b.Produce(t, evs)
	recs := ReadN(t, c, len(evs))

	// Commit half of each partition.
	byPart := map[int32][]Record{}
	for _, r := range recs {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	last := map[int32]int64{}
	var rest []Record
	for p, rs := range byPart {
		k := len(rs) / 2
		if k > 0 {
			last[p] = rs[k-1].Offset
		}
		rest = append(rest, rs[k:]...)
	}
	c.Commit(b.Topic, last)
	committed := func(c *Consumer) map[int32]int64 {
		var parts []map[string]any
		for p := range int32(h.Partitions) {
			parts = append(parts, map[string]any{"topic": b.Topic, "partition": p})
		}
		r := c.Must(http.StatusOK, "POST", "/consumers/committed/offsets", map[string]any{"partitions": parts})
		var body struct {
			Offsets []struct {
				Partition int32 `json:"partition"`
				Offset    int64 `json:"offset"`
			} `json:"offsets"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		for _, o := range body.Offsets {
			out[o.Partition] = o.Offset
		}
		return out
	}
	want := map[int32]int64{}
	for p, o := range last {
		want[p] = o + 1 // the next offset to read
	}
	if got := committed(c); !mapsEqual(got, want) {
		t.Fatalf("committed offsets %v, want %v", got, want)
	}

	env.Restart()
	c = env.API.Create("durable", "c2", earliest)
	if got := committed(c); !mapsEqual(got, want) {
		t.Fatalf("after restart, committed offsets %v, want %v", got, want)
	}
	c.Subscribe(b.Topic)
	got := ReadN(t, c, len(rest))
	if g, w := Seqs(t, got), Seqs(t, rest); !slices.Equal(g, w) {
		t.Fatalf("after restart read %v, want %v", g, w)
	}
	if more := c.Records("timeout=300"); len(more) != 0 {
		t.Fatalf("%d records read twice after restart", len(more))
	}
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// testSSEResume reads part of a stream, then resumes on a new connection
// with Last-Event-ID. With overlap the old connection stays open, as when
// a client reconnects before the server sees the old one is gone: the new
// stream must still get every later record, and the old one must end.
func testSSEResume(t *testing.T, h Harness, overlap bool) {
	b := h.Setup(t)
	env := Start(t, b, Config())
	c := env.API.Create("sse", "c1", earliest)
	c.Subscribe(b.Topic)
	evs := Events(0, 40)
	b.Produce(t, evs)

	seen := map[int]string{}
	read := func(s *Stream, n int) string {
		var last string
		for range n {
			ev, ok := s.Next()
			if !ok {
				t.Fatalf("stream ended after %d events", len(seen))
			}
			if ev.Type != "record" {
				t.Fatalf("event %q: %s", ev.Type, ev.Data)
			}
			var r Record
			if err := json.Unmarshal(ev.Data, &r); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%d:%d", r.Partition, r.Offset); ev.ID != want {
				t.Fatalf("event id %q, want %q", ev.ID, want)
			}
			if prev, dup := seen[r.Seq()]; dup {
				t.Fatalf("seq %d delivered twice (events %s and %s)", r.Seq(), prev, ev.ID)
			}
			seen[r.Seq()] = ev.ID
			last = ev.ID
		}
		return last
	}
	old := c.Stream("")
	last := read(old, 7)
	if !overlap {
		old.Close() // the server has likely sent more than the client read
	}
	// The instance remembers where it was; reconnecting resumes after the
	// last event the client saw.
	s := c.Stream(last)
	if overlap {
		// The old stream ends with an error event after whatever it had
		// sent before the new one took over.
		var end Event
		for ev, ok := old.Next(); ok; ev, ok = old.Next() {
			end = ev
		}
		if end.Type != "error" || !strings.Contains(string(end.Data), "40904") {
			t.Fatalf("old stream ended with %q %s, want error 40904", end.Type, end.Data)
		}
		old.Close()
	}
	read(s, len(evs)-7)
	s.Close()
	if len(seen) != len(evs) {
		t.Fatalf("read %d events, want %d", len(seen), len(evs))
	}
	if more := c.Records("timeout=300"); len(more) != 0 {
		t.Fatalf("%d records after the stream delivered them all", len(more))
	}
}

func testLongPoll(t *testing.T, h Harness) {
	b := h.Setup(t)
	env := Start(t, b, Config())
	c := env.API.Create("longpoll", "c1", earliest)
	c.Subscribe(b.Topic)
	waitAssigned(t, h.Partitions, c)

	// The client gives up long before the 30s the request may wait: the
	// request must return when the record arrives.
	api := NewAPI(t, env.Server.URL)
	api.HTTP.Timeout = 15 * time.Second
	got := make(chan Response, 1)
	go func() {
		got <- api.Do("GET", "/consumers/records?timeout=30000", c.Headers(), nil)
	}()
	Eventually(t, 10*time.Second, "the read to wait", func() bool { return env.Gauge("parley_consumer_api_waiting_reads") >= 1 })
	b.Produce(t, Events(0, 1))
	select {
	case r := <-got:
		var recs []Record
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &recs) != nil || len(recs) != 1 || recs[0].Seq() != 0 {
			t.Fatalf("long poll answered %s", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not return when the record arrived")
	}
}

func testSeek(t *testing.T, h Harness) {
	b := h.Setup(t)
	env := Start(t, b, Config())
	evs := Events(0, 12)
	b.Produce(t, evs)

	r := env.API.Do("GET", "/partitions?topic="+b.Topic, nil, nil)
	var parts struct {
		Topic      string  `json:"topic"`
		Partitions []int32 `json:"partitions"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &parts) != nil || parts.Topic != b.Topic || len(parts.Partitions) != h.Partitions {
		t.Fatalf("GET /partitions: %s", r)
	}
	total := int64(0)
	for _, p := range parts.Partitions {
		r := env.API.Do("GET", "/partitions/"+strconv.Itoa(int(p))+"/offsets?topic="+b.Topic, nil, nil)
		var o consumer.PartitionOffsets
		if r.Status != 200 || json.Unmarshal(r.Body, &o) != nil {
			t.Fatalf("offsets of %d: %s", p, r)
		}
		total += o.End - o.Beginning
	}
	if total != int64(len(evs)) {
		t.Fatalf("partition offsets span %d records, want %d", total, len(evs))
	}

	c := env.API.Create("seeker", "c1", map[string]any{"auto.offset.reset": "latest"})
	var tps []map[string]any
	for _, p := range parts.Partitions {
		tps = append(tps, map[string]any{"topic": b.Topic, "partition": p})
	}
	c.Must(http.StatusNoContent, "POST", "/consumers/assignments", map[string]any{"partitions": tps})
	if got := c.Assignment(); len(got) != h.Partitions {
		t.Fatalf("assignment %v", got)
	}
	// latest: nothing yet.
	if recs := c.Records("timeout=300"); len(recs) != 0 {
		t.Fatalf("latest consumer read %d old records", len(recs))
	}
	c.Must(http.StatusNoContent, "POST", "/consumers/positions/beginning", map[string]any{"partitions": tps})
	all := ReadN(t, c, len(evs))
	if got := Seqs(t, all); !slices.Equal(got, seqRange(0, len(evs))) {
		t.Fatalf("from the beginning read %v", got)
	}
	// Seek one partition back to a record's offset: it comes again.
	target := all[len(all)/2]
	c.Must(http.StatusNoContent, "POST", "/consumers/positions", map[string]any{"offsets": []map[string]any{{"topic": b.Topic, "partition": target.Partition, "offset": target.Offset}}})
	again := ReadN(t, c, 1)
	if again[0].Partition != target.Partition || again[0].Offset != target.Offset {
		t.Fatalf("after seek read %d:%d, want %d:%d", again[0].Partition, again[0].Offset, target.Partition, target.Offset)
	}
	c.Must(http.StatusNoContent, "POST", "/consumers/positions/end", map[string]any{"partitions": tps})
	if recs := c.Records("timeout=300"); len(recs) != 0 {
		t.Fatalf("read %d records after seeking to the end", len(recs))
	}
	b.Produce(t, Events(100, 1))
	if got := ReadN(t, c, 1); got[0].Seq() != 100 {
		t.Fatalf("after the end read seq %d", got[0].Seq())
	}
	// Nothing committed: the committed offsets are empty.
	r = c.Must(http.StatusOK, "POST", "/consumers/committed/offsets", map[string]any{"partitions": tps})
	if !strings.Contains(string(r.Body), `"offsets":[]`) {
		t.Fatalf("committed offsets of a group that never committed: %s", r.Body)
	}
}
