package consumertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/consumer"
)

// bounds returns each partition's offsets.
func bounds(t *testing.T, env *Env, topic string, partitions int) map[int32]consumer.PartitionOffsets {
	t.Helper()
	out := map[int32]consumer.PartitionOffsets{}
	for p := range int32(partitions) {
		r := env.API.Do("GET", "/partitions/"+strconv.Itoa(int(p))+"/offsets?topic="+topic, nil, nil)
		var o consumer.PartitionOffsets
		if r.Status != 200 || json.Unmarshal(r.Body, &o) != nil {
			t.Fatalf("offsets of %d: %s", p, r)
		}
		out[p] = o
	}
	return out
}

// readUntil reads until every seq in want has arrived, failing after 60s.
func readUntil(t *testing.T, c *Consumer, want []int) []Record {
	t.Helper()
	var all []Record
	seen := map[int]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		for _, s := range want {
			if !seen[s] {
				missing++
			}
		}
		if missing == 0 {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never arrived (got %d records)", missing, len(want), len(all))
		}
		for _, r := range c.Records("timeout=500") {
			if seen[r.Seq()] {
				t.Fatalf("seq %d delivered twice", r.Seq())
			}
			seen[r.Seq()] = true
			all = append(all, r)
		}
	}
}

// testOutOfRange checks that no position outside a partition skips
// events silently, as Kafka's OffsetOutOfRange under auto.offset.reset:
// a seek, a commit and a Last-Event-ID past the end.
func testOutOfRange(t *testing.T, h Harness, policy string) {
	b := h.Setup(t)
	env := Start(t, b, Config())
	b.Produce(t, Events(0, 12))
	bs := bounds(t, env, b.Topic, h.Partitions)
	p := int32(-1)
	for q, o := range bs {
		if o.End > o.Beginning && (p < 0 || q < p) {
			p = q
		}
	}
	pb := bs[p]
	var tps []map[string]any
	for q := range int32(h.Partitions) {
		tps = append(tps, map[string]any{"topic": b.Topic, "partition": q})
	}
	cfg := map[string]any{"auto.offset.reset": policy, "auto.commit.enable": "false"}
	far := map[string]any{"offsets": []map[string]any{{"topic": b.Topic, "partition": strconv.Itoa(int(p)), "offset": 99999}}}
	rng := fmt.Sprintf("[%d, %d]", pb.Beginning, pb.End)

	t.Run("Seek", func(t *testing.T) {
		c := env.API.Create("oor-seek", "c1", cfg)
		c.Must(http.StatusNoContent, "POST", "/consumers/assignments", map[string]any{"partitions": tps})
		if policy == "none" {
			// No committed offset under none: a read fails, naming the range.
			r := c.Do("GET", "/consumers/records?timeout=0", nil)
			if r.Status != http.StatusConflict || r.ErrorCode() != consumer.CodeOffsetOutOfRange || !strings.Contains(string(r.Body), "no committed offset") {
				t.Fatalf("read without a commit under none: %s", r)
			}
			c.Must(http.StatusNoContent, "POST", "/consumers/positions/end", map[string]any{"partitions": tps})
		}
		c.Must(http.StatusNoContent, "POST", "/consumers/positions", far)
		r := c.Do("GET", "/consumers/records?timeout=500", nil)
		var old []Record
		switch policy {
		case "none":
			if r.Status != http.StatusConflict || r.ErrorCode() != consumer.CodeOffsetOutOfRange || !strings.Contains(string(r.Body), "99999") || !strings.Contains(string(r.Body), rng) {
				t.Fatalf("read of an out-of-range position under none: %s", r)
			}
			// It stays refused until the client seeks.
			if r := c.Do("GET", "/consumers/records?timeout=0", nil); r.ErrorCode() != consumer.CodeOffsetOutOfRange {
				t.Fatalf("second read under none: %s", r)
			}
			c.Must(http.StatusNoContent, "POST", "/consumers/positions/end", map[string]any{"partitions": tps})
		default:
			want := fmt.Sprintf("%s:%d from=99999 to=", b.Topic, p)
			to := pb.End
			if policy == "earliest" {
				to = pb.Beginning
			}
			want += strconv.FormatInt(to, 10)
			if r.Status != 200 || !strings.Contains(r.Header.Get(consumer.ResetHeader), want) {
				t.Fatalf("read after seeking out of range: %s (%s %q, want %q)", r, consumer.ResetHeader, r.Header.Get(consumer.ResetHeader), want)
			}
			if err := json.Unmarshal(r.Body, &old); err != nil {
				t.Fatal(err)
			}
			if policy == "earliest" {
				// Partition p is read again from its beginning.
				n := int(pb.End - pb.Beginning)
				for got := countPartition(old, p); got < n; got = countPartition(old, p) {
					old = append(old, c.Records("timeout=500")...)
				}
			}
		}
		// Every event written afterwards arrives.
		b.Produce(t, Events(100, 7))
		readUntil(t, c, seqRange(100, 7))
	})

	t.Run("Commit", func(t *testing.T) {
		c := env.API.Create("oor-commit", "c1", cfg)
		c.Must(http.StatusNoContent, "POST", "/consumers/assignments", map[string]any{"partitions": tps})
		end := bounds(t, env, b.Topic, h.Partitions)[p].End
		r := c.Do("POST", "/consumers/offsets", map[string]any{"offsets": []map[string]any{{"topic": b.Topic, "partition": p, "offset": end}}})
		if r.Status != http.StatusConflict || r.ErrorCode() != consumer.CodeOffsetOutOfRange || !strings.Contains(string(r.Body), "at most "+strconv.FormatInt(end-1, 10)) {
			t.Fatalf("commit past the end: %s", r)
		}
		r = c.Must(http.StatusOK, "POST", "/consumers/committed/offsets", map[string]any{"partitions": tps})
		if !strings.Contains(string(r.Body), `"offsets":[]`) {
			t.Fatalf("a refused commit was stored: %s", r)
		}
		// The last record is fine, and the group then waits for the next.
		c.Must(http.StatusNoContent, "POST", "/consumers/offsets", map[string]any{"offsets": []map[string]any{{"topic": b.Topic, "partition": p, "offset": end - 1}}})
	})

	t.Run("LastEventID", func(t *testing.T) {
		c := env.API.Create("oor-sse", "c1", cfg)
		c.Must(http.StatusNoContent, "POST", "/consumers/assignments", map[string]any{"partitions": tps})
		if policy == "none" {
			c.Must(http.StatusNoContent, "POST", "/consumers/positions/end", map[string]any{"partitions": tps})
		}
		now := bounds(t, env, b.Topic, h.Partitions)[p]
		rng := fmt.Sprintf("[%d, %d]", now.Beginning, now.End)
		s := c.Stream(fmt.Sprintf("%d:99999", p))
		defer s.Close()
		if policy == "none" {
			ev, ok := s.Next()
			if !ok || ev.Type != "error" || !strings.Contains(string(ev.Data), strconv.Itoa(consumer.CodeOffsetOutOfRange)) || !strings.Contains(string(ev.Data), rng) {
				t.Fatalf("stream resumed out of range under none: %v %s", ok, ev.Data)
			}
			return
		}
		// Under latest the reset goes to the end as it is when the stream
		// starts reading: produce only after it, or the new events are
		// rightly skipped.
		if policy == "latest" && !s.WaitComment(": offset reset") {
			t.Fatal("stream told no offset reset")
		}
		b.Produce(t, Events(200, 7))
		seen := map[int]bool{}
		fromP := 0
		for len(seen) < 7 {
			ev, ok := s.Next()
			if !ok {
				t.Fatalf("stream ended with %d of 7 new events", len(seen))
			}
			if ev.Type != "record" {
				t.Fatalf("event %q: %s", ev.Type, ev.Data)
			}
			var r Record
			if err := json.Unmarshal(ev.Data, &r); err != nil {
				t.Fatal(err)
			}
			if r.Seq() >= 200 {
				seen[r.Seq()] = true
			} else if r.Partition == p {
				fromP++
			}
		}
		want := fmt.Sprintf(": offset reset %s:%d from=100000", b.Topic, p)
		found := false
		for _, cm := range s.Comments {
			found = found || strings.HasPrefix(cm, want)
		}
		if !found {
			t.Fatalf("no %q comment on the stream: %q", want, s.Comments)
		}
		if policy == "earliest" && fromP < int(now.End-now.Beginning)-7 {
			t.Fatalf("earliest: %d old records of partition %d, want %d", fromP, p, now.End-now.Beginning)
		}
	})
}

func countPartition(recs []Record, p int32) int {
	n := 0
	for _, r := range recs {
		if r.Partition == p && r.Seq() < 100 {
			n++
		}
	}
	return n
}
