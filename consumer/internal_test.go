package consumer

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
)

func TestAppendRecord(t *testing.T) {
	ts := time.UnixMilli(1700000000123)
	cases := []struct {
		name    string
		rec     Record
		binary  bool
		oneLine bool
		want    string
	}{
		{"event", Record{Topic: "t", Partition: 1, Offset: 7, Key: []byte("u1"), Value: []byte(`{"event": "bot", "text": "h\u00e9"}`), Timestamp: ts},
			false, false, `{"topic":"t","key":"u1","value":{"event": "bot", "text": "h\u00e9"},"partition":1,"offset":7,"timestamp":1700000000123,"headers":{}}`},
		{"no key, no timestamp, headers", Record{Topic: "t", Value: []byte(`{}`), Headers: []Header{{"RASA_ENVIRONMENT", []byte("prod")}, {"bin", []byte{0xff}}}},
			false, false, `{"topic":"t","key":null,"value":{},"partition":0,"offset":0,"timestamp":null,"headers":{"RASA_ENVIRONMENT":"prod","bin":"/w=="}}`},
		{"not JSON", Record{Topic: "t", Key: []byte("a\"b\n"), Value: []byte("plain \x01text")},
			false, false, `{"topic":"t","key":"a\"b\n","value":"plain \u0001text","partition":0,"offset":0,"timestamp":null,"headers":{}}`},
		{"binary", Record{Topic: "t", Key: []byte("k"), Value: []byte(`{"a":1}`)},
			true, false, `{"topic":"t","key":"aw==","value":"eyJhIjoxfQ==","partition":0,"offset":0,"timestamp":null,"headers":{}}`},
		{"one line", Record{Topic: "t", Value: []byte("{\n  \"a\": \"x y\"\n}")},
			false, true, `{"topic":"t","key":null,"value":{"a":"x y"},"partition":0,"offset":0,"timestamp":null,"headers":{}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(appendRecord(nil, &c.rec, c.binary, c.oneLine))
			if got != c.want {
				t.Fatalf("\n got %s\nwant %s", got, c.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatal("not JSON")
			}
		})
	}
	if got := string(appendRecords(nil, nil, recordsFormat{})); got != "[]" {
		t.Fatalf("no records: %s", got)
	}
	if got := string(appendRecords(nil, nil, recordsFormat{ndjson: true})); got != "" {
		t.Fatalf("no records as NDJSON: %q", got)
	}
	recs := []Record{
		{Topic: "t", Offset: 1, Value: []byte(`{"event": "user"}`)},
		{Topic: "t", Offset: 2, Value: []byte("{\n\"event\": \"bot\"}")},
	}
	formats := []struct {
		f    recordsFormat
		want string
	}{
		{recordsFormat{valueOnly: true}, `[{"event": "user"},{` + "\n" + `"event": "bot"}]`},
		{recordsFormat{valueOnly: true, ndjson: true}, `{"event": "user"}` + "\n" + `{"event":"bot"}` + "\n"},
		{recordsFormat{ndjson: true}, `{"topic":"t","key":null,"value":{"event": "user"},"partition":0,"offset":1,"timestamp":null,"headers":{}}` + "\n" +
			`{"topic":"t","key":null,"value":{"event":"bot"},"partition":0,"offset":2,"timestamp":null,"headers":{}}` + "\n"},
		{recordsFormat{valueOnly: true, binary: true}, `["eyJldmVudCI6ICJ1c2VyIn0=","ewoiZXZlbnQiOiAiYm90In0="]`},
	}
	for _, c := range formats {
		if got := string(appendRecords(nil, recs, c.f)); got != c.want {
			t.Errorf("%+v:\n got %q\nwant %q", c.f, got, c.want)
		}
	}
}

func TestJournalRewind(t *testing.T) {
	j := newJournal()
	// Two partitions interleaved: p0 offsets 10.., p1 offsets 50...
	for i := range 4 {
		j.add("t", 0, int64(10+i))
		j.add("t", 1, int64(50+i))
	}
	seeks, found := j.rewind(0, 11) // the client saw p0:11; after it came p1:51, p0:12, p1:52, ...
	want := []TopicPartitionOffset{{Topic: "t", Partition: 1, Offset: 51}, {Topic: "t", Partition: 0, Offset: 12}}
	if !found || !slices.Equal(seeks, want) {
		t.Fatalf("rewind = %v %v, want %v", seeks, found, want)
	}
	// The entries after the event are gone; the event itself stays.
	if seeks, found := j.rewind(0, 11); !found || len(seeks) != 0 {
		t.Fatalf("second rewind = %v %v", seeks, found)
	}
	if _, found := j.rewind(3, 1); found {
		t.Fatal("found an event never sent")
	}
	// The ring forgets the oldest entries.
	for i := range journalSize {
		j.add("t", 2, int64(i))
	}
	if _, found := j.rewind(0, 10); found {
		t.Fatal("found an entry pushed out of the ring")
	}
	if seeks, found := j.rewind(2, int64(journalSize-2)); !found || len(seeks) != 1 || seeks[0].Offset != int64(journalSize-1) {
		t.Fatalf("rewind in a full ring = %v %v", seeks, found)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2, 3)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.allow("g", now); !ok {
			t.Fatalf("request %d within the burst was refused", i)
		}
	}
	ok, wait := l.allow("g", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: %v, wait %v (want 500ms at 2/s)", ok, wait)
	}
	if ok, _ := l.allow("other", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.allow("g", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("a token did not come back after 500ms")
	}
	if ok, _ := newLimiter(0, 1).allow("g", now); !ok {
		t.Fatal("rate 0 must not limit")
	}
}

type countingNotifier struct {
	Source
	n int
}

func (c *countingNotifier) Notify() { c.n++ }

func TestNotifyOnPublish(t *testing.T) {
	rec := brokertest.NewRecorder()
	src := &countingNotifier{}
	b := NotifyOnPublish(rec, src)
	if err := b.Publish(context.Background(), brokertest.Seq("a", 1)); err != nil {
		t.Fatal(err)
	}
	rec.FailNext = 1
	if err := b.Publish(context.Background(), brokertest.Seq("a", 2)); err == nil {
		t.Fatal("injected failure not returned")
	}
	if src.n != 1 {
		t.Fatalf("notified %d times, want once (after the successful publish)", src.n)
	}
	if _, ok := b.(broker.Pinger); !ok {
		t.Fatal("the wrapper hides Ping")
	}
	if got := NotifyOnPublish(rec, nil); got != broker.Broker(rec) {
		t.Fatal("a source that cannot be notified must leave the broker as is")
	}
}

// The wrapper keeps an exactly-once broker exactly once: the spool writes
// through its streams, which notify too.
func TestNotifyOnPublishPositioned(t *testing.T) {
	rec := brokertest.NewPositionedRecorder()
	src := &countingNotifier{}
	pb, ok := NotifyOnPublish(rec, src).(broker.Positioned)
	if !ok {
		t.Fatal("the wrapper hides broker.Positioned: the spool would deliver at least once")
	}
	ctx := context.Background()
	st, err := pb.OpenStream(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Position(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.PublishAt(ctx, 0, 1, brokertest.Seq("a", 1)); err != nil {
		t.Fatal(err)
	}
	if src.n != 1 || rec.Position("s") != 1 {
		t.Fatalf("notified %d times, position %d; want 1 and 1", src.n, rec.Position("s"))
	}
}
