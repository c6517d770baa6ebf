package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testenv"
)

// events is the stream size of each fault test.
const events = 100_000

func requireFaultTests(t *testing.T) {
	t.Helper()
	if os.Getenv("PARLEY_FAULT_TESTS") != "1" {
		t.Skip("fault tests kill real services: run them alone with PARLEY_FAULT_TESTS=1 (make fault; .ci/run does)")
	}
}

// result is one fault test's figures, for docs/reliability.md.
type result struct {
	Test       string  `json:"test"`
	Fault      string  `json:"fault"`
	Events     int     `json:"events_accepted"`
	Delivered  int     `json:"distinct_delivered"`
	Lost       int     `json:"lost"`
	Duplicated int     `json:"duplicated"`
	Retries    int64   `json:"client_retries"`
	Outage     float64 `json:"outage_seconds"`
	Recovery   float64 `json:"recovery_seconds"`
	Total      float64 `json:"total_seconds"`
}

func (r result) check(t *testing.T) {
	t.Helper()
	t.Logf("%s: %d accepted, %d delivered, %d lost, %d duplicated, %d client retries, outage %.1fs, recovery %.1fs, total %.1fs",
		r.Fault, r.Events, r.Delivered, r.Lost, r.Duplicated, r.Retries, r.Outage, r.Recovery, r.Total)
	if path := os.Getenv("PARLEY_FAULT_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			b, _ := json.Marshal(r)
			f.Write(append(b, '\n'))
			f.Close()
		}
	}
	if r.Lost != 0 {
		t.Fatalf("%d accepted events lost", r.Lost)
	}
	if r.Events != events {
		t.Fatalf("only %d of %d events accepted", r.Events, events)
	}
}

func runID(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), time.Now().UnixNano()%1e9)
}

// outage runs fault (e.g. kill -9 the broker), waits, then restore, and
// records how long the broker was gone and when it was back.
type outage struct {
	down, up time.Time
}

func (o *outage) seconds() float64 { return o.up.Sub(o.down).Seconds() }

func TestKafkaKill9MidStream(t *testing.T) {
	requireFaultTests(t)
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	run := runID(t)
	topic := "fault-" + run
	createTopic(t, seeds, topic, 3)
	p := newParley(t, fmt.Sprintf("event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  partition_by_sender: true\n  security_protocol: PLAINTEXT\n", seeds, topic))
	p.start()
	l := newLoad(p.url(), run, events)
	var o outage
	l.when(events*3/10, func() {
		o.down = time.Now()
		service(t, "kill", "kafka")
		time.Sleep(3 * time.Second) // the outage itself
		service(t, "start", "kafka")
		o.up = time.Now()
	})
	start := time.Now()
	l.run(context.Background(), t)
	ta := countKafka(t, seeds, topic, l)
	lost, dup := ta.report(t, l)
	result{Test: t.Name(), Fault: "kill -9 Kafka, restart", Events: int(l.accepted.Load()), Delivered: ta.distinct(), Lost: lost, Duplicated: dup,
		Retries: l.retries.Load(), Outage: o.seconds(), Recovery: time.Since(o.up).Seconds(), Total: time.Since(start).Seconds()}.check(t)
}

func TestRabbitMQRestartMidStream(t *testing.T) {
	requireFaultTests(t)
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	run := runID(t)
	queue, exchange := "fault-q-"+run, "fault-x-"+run
	p := newParley(t, fmt.Sprintf("event_broker:\n  type: pika\n  url: %s\n  exchange_name: %s\n  queues: [%s]\n", url, exchange, queue))
	p.start()
	l := newLoad(p.url(), run, events)
	var o outage
	l.when(events*3/10, func() {
		o.down = time.Now()
		service(t, "restart", "rabbitmq")
		o.up = time.Now()
	})
	start := time.Now()
	l.run(context.Background(), t)
	ta := countAMQP(t, url, queue, l)
	lost, dup := ta.report(t, l)
	result{Test: t.Name(), Fault: "restart RabbitMQ", Events: int(l.accepted.Load()), Delivered: ta.distinct(), Lost: lost, Duplicated: dup,
		Retries: l.retries.Load(), Outage: o.seconds(), Recovery: time.Since(o.up).Seconds(), Total: time.Since(start).Seconds()}.check(t)
}

func TestPostgresRestartMidStream(t *testing.T) {
	requireFaultTests(t)
	dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
	run := runID(t)
	table := "fault_" + strings.NewReplacer("-", "_").Replace(run)
	p := newParley(t, fmt.Sprintf("event_broker:\n  type: sql\n  dialect: postgresql\n  url: %s\n  table: %s\n", dsn, table))
	p.start()
	l := newLoad(p.url(), run, events)
	var o outage
	l.when(events*3/10, func() {
		o.down = time.Now()
		service(t, "restart", "postgres")
		o.up = time.Now()
	})
	start := time.Now()
	l.run(context.Background(), t)
	ta := countSQL(t, dsn, table, l)
	lost, dup := ta.report(t, l)
	result{Test: t.Name(), Fault: "restart PostgreSQL", Events: int(l.accepted.Load()), Delivered: ta.distinct(), Lost: lost, Duplicated: dup,
		Retries: l.retries.Load(), Outage: o.seconds(), Recovery: time.Since(o.up).Seconds(), Total: time.Since(start).Seconds()}.check(t)
}

// TestParleyKill9MidStream crashes parley itself: the events it accepted
// are in its spool and must be delivered after the restart.
func TestParleyKill9MidStream(t *testing.T) {
	requireFaultTests(t)
	dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	run := runID(t)
	table := "fault_" + strings.NewReplacer("-", "_").Replace(run)
	topic := "fault-" + run
	createTopic(t, seeds, topic, 3)
	p := newParley(t, fmt.Sprintf("event_broker:\n  - type: sql\n    dialect: postgresql\n    url: %s\n    table: %s\n  - type: kafka\n    url: %s\n    topic: %s\n    partition_by_sender: true\n    security_protocol: PLAINTEXT\n", dsn, table, seeds, topic))
	p.start()
	l := newLoad(p.url(), run, events)
	var o outage
	l.when(events*3/10, func() {
		o.down = time.Now()
		p.kill9()
		p.start()
		o.up = time.Now()
	})
	start := time.Now()
	l.run(context.Background(), t)
	for name, ta := range map[string]*tally{"sql": countSQL(t, dsn, table, l), "kafka": countKafka(t, seeds, topic, l)} {
		lost, dup := ta.report(t, l)
		result{Test: t.Name() + "/" + name, Fault: "kill -9 parley, restart (" + name + ")", Events: int(l.accepted.Load()), Delivered: ta.distinct(), Lost: lost, Duplicated: dup,
			Retries: l.retries.Load(), Outage: o.seconds(), Recovery: time.Since(o.up).Seconds(), Total: time.Since(start).Seconds()}.check(t)
	}
}
