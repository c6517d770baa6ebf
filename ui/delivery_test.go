package ui

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/spool"
)

func TestDeadLetterCountAndTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kafka.ndjson")
	var c deadCounter
	if n, err := c.count(path); n != 0 || err != nil {
		t.Fatalf("missing file: %d %v", n, err)
	}
	appendLines := func(from, to int) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for i := from; i < to; i++ {
			line, _ := json.Marshal(spool.DeadLetter{Seq: uint64(i), SenderID: fmt.Sprint("s", i), Error: "too large", Event: json.RawMessage(`{"event":"bot"}`)})
			f.Write(append(line, '\n'))
		}
	}
	appendLines(0, 150)
	if n, err := c.count(path); n != 150 || err != nil {
		t.Fatalf("count: %d %v", n, err)
	}
	appendLines(150, 160) // counted from where it stopped
	if n, _ := c.count(path); n != 160 {
		t.Fatalf("count after append: %d", n)
	}
	n, last, err := deadLetterTail(path)
	if err != nil || n != 160 || len(last) != deadLetterShown || last[0].Seq != 159 || last[99].Seq != 60 {
		t.Fatalf("tail: %d entries, %d shown, first %d, %v", n, len(last), last[0].Seq, err)
	}
	// A replaced (shorter) file is counted again.
	if err := os.WriteFile(path, []byte("{\"seq\":1}\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.count(path); n != 2 {
		t.Errorf("count after truncation: %d", n)
	}
	_, last, _ = deadLetterTail(path)
	if len(last) != 2 || !strings.Contains(last[0].Error, "unreadable") || last[0].EventRaw != "not json" {
		t.Errorf("unreadable line: %+v", last)
	}
}

func TestRatesFromMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricDelivered}, []string{"broker"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricFailures}, []string{"broker"})
	appended := prometheus.NewCounter(prometheus.CounterOpts{Name: metricAppended})
	reg.MustRegister(delivered, failures, appended)
	r := &rates{g: reg, interval: 5 * time.Second, window: time.Minute}
	t0 := time.Unix(1_700_000_000, 0)
	r.take(t0)
	delivered.WithLabelValues("kafka").Add(50)
	failures.WithLabelValues("pika").Add(10)
	appended.Add(50)
	r.take(t0.Add(5 * time.Second))
	s := r.series()
	if len(s) != 1 || s[0].delivered["kafka"] != 10 || s[0].failures["pika"] != 2 || s[0].accepted != 10 {
		t.Fatalf("series: %+v", s)
	}
	// Samples older than the window go.
	for i := 2; i < 30; i++ {
		r.take(t0.Add(time.Duration(i) * 5 * time.Second))
	}
	if s := r.series(); len(s) > 13 || s[0].at.Before(t0.Add(140*time.Second-time.Minute-5*time.Second)) {
		t.Errorf("kept %d points from %v", len(s), s[0].at)
	}
	c := buildChart(r.series(), []string{"kafka", "pika"}, time.Minute, t0.Add(145*time.Second))
	if c.Empty || len(c.Lines) != 5 || c.Max != "1/s" {
		t.Errorf("chart: %+v", c)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0.3: 1, 1: 1, 1.2: 2, 3: 5, 7: 10, 12: 20, 4500: 5000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%g) = %g, want %g", in, got, want)
		}
	}
}

func TestDeliveryPagesEscape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.ndjson")
	line, _ := json.Marshal(spool.DeadLetter{Seq: 7, SenderID: "<img src=x onerror=alert(1)>", Error: "<script>alert(2)</script>", Event: json.RawMessage(`{"text":"<script>alert(3)</script>"}`)})
	if err := os.WriteFile(path, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	h, _ := newUI(t, Options{Delivery: fakeDelivery{spool.Status{MaxSize: 1 << 30, Bytes: 1536, Brokers: []spool.BrokerStatus{{
		Name: "<b>kafka</b>", Pending: 12, Failing: true, FailingSince: time.Now().Add(-time.Minute), Attempts: 9,
		LastError: "dial <script>alert(4)</script>", LastErrorAt: time.Now(), DeadLetterFile: path,
	}}}}})
	page := get(h, "/ui/delivery", "127.0.0.1:1").Body.String()
	dead := get(h, "/ui/deadletters?broker="+url.QueryEscape("<b>kafka</b>"), "127.0.0.1:1")
	for name, body := range map[string]string{"delivery": page, "dead letters": dead.Body.String()} {
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") || strings.Contains(body, "<b>kafka") {
			t.Errorf("%s page has unescaped text", name)
		}
	}
	if !strings.Contains(page, `data-broker="&lt;b&gt;kafka&lt;/b&gt;"`) || !strings.Contains(page, ">12<") || !strings.Contains(page, "failing") || !strings.Contains(page, "1.5 KiB") {
		t.Errorf("delivery page:\n%s", page)
	}
	if dead.Code != 200 || !strings.Contains(dead.Body.String(), "&lt;script&gt;alert(2)") || !strings.Contains(dead.Body.String(), "seq 7") {
		t.Errorf("dead letters page: %d\n%s", dead.Code, dead.Body.String())
	}
	if w := get(h, "/ui/deadletters?broker=../../etc/passwd", "127.0.0.1:1"); w.Code != 404 {
		t.Errorf("unknown broker: %d", w.Code)
	}
}
