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

// scenario is one fault test: parley configured by endpoints (given the
// run's id), a fault injected when 30% of the events are accepted, and the
// destinations counted afterwards.
type scenario struct {
	fault     string
	endpoints func(run string) string
	// inject breaks something and restores it; it runs on the load's
	// goroutine, so it reports with Errorf.
	inject func(t *testing.T, p *parley)
	// count reads each destination (by name) for the run.
	count map[string]func(t *testing.T, run string, l *load) *tally
}

func (sc scenario) run(t *testing.T, run string) {
	p := newParley(t, sc.endpoints(run))
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	l := newLoad(p.url(), run, events)
	var down, up time.Time
	l.when(events*3/10, func() {
		down = time.Now()
		sc.inject(t, p)
		up = time.Now()
	})
	start := time.Now()
	l.run(context.Background(), t)
	for name, count := range sc.count {
		ta := count(t, run, l)
		lost, dup := ta.report(t, l)
		fault := sc.fault
		if len(sc.count) > 1 {
			fault += " (" + name + ")"
		}
		result{Test: t.Name(), Fault: fault, Events: int(l.accepted.Load()), Delivered: ta.distinct(), Lost: lost, Duplicated: dup,
			Retries: l.retries.Load(), Outage: up.Sub(down).Seconds(), Recovery: time.Since(up).Seconds(), Total: time.Since(start).Seconds()}.check(t)
	}
}

func kafkaYAML(seeds, topic string) string {
	return fmt.Sprintf("  - type: kafka\n    url: %s\n    topic: %s\n    partition_by_sender: true\n    security_protocol: PLAINTEXT\n", seeds, topic)
}

func sqlYAML(dsn, table string) string {
	return fmt.Sprintf("  - type: sql\n    dialect: postgresql\n    url: %s\n    table: %s\n", dsn, table)
}

func tableName(run string) string { return "fault_" + strings.NewReplacer("-", "_").Replace(run) }

func TestKafkaKill9MidStream(t *testing.T) {
	requireFaultTests(t)
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	run := runID(t)
	createTopic(t, seeds, "fault-"+run, 3)
	scenario{
		fault:     "kill -9 Kafka, restart",
		endpoints: func(run string) string { return "event_broker:\n" + kafkaYAML(seeds, "fault-"+run) },
		inject: func(t *testing.T, _ *parley) {
			if service(t, "kill", "kafka") {
				time.Sleep(3 * time.Second) // the outage itself
				service(t, "start", "kafka")
			}
		},
		count: map[string]func(*testing.T, string, *load) *tally{
			"kafka": func(t *testing.T, run string, l *load) *tally { return countKafka(t, seeds, "fault-"+run, l) },
		},
	}.run(t, run)
}

func TestRabbitMQRestartMidStream(t *testing.T) {
	requireFaultTests(t)
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	scenario{
		fault: "restart RabbitMQ",
		endpoints: func(run string) string {
			return fmt.Sprintf("event_broker:\n  type: pika\n  url: %s\n  exchange_name: fault-x-%s\n  queues: [fault-q-%s]\n", url, run, run)
		},
		inject: func(t *testing.T, _ *parley) { service(t, "restart", "rabbitmq") },
		count: map[string]func(*testing.T, string, *load) *tally{
			"pika": func(t *testing.T, run string, l *load) *tally { return countAMQP(t, url, "fault-q-"+run, l) },
		},
	}.run(t, runID(t))
}

func TestPostgresRestartMidStream(t *testing.T) {
	requireFaultTests(t)
	dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
	scenario{
		fault:     "restart PostgreSQL",
		endpoints: func(run string) string { return "event_broker:\n" + sqlYAML(dsn, tableName(run)) },
		inject:    func(t *testing.T, _ *parley) { service(t, "restart", "postgres") },
		count: map[string]func(*testing.T, string, *load) *tally{
			"sql": func(t *testing.T, run string, l *load) *tally { return countSQL(t, dsn, tableName(run), l) },
		},
	}.run(t, runID(t))
}

// TestParleyKill9MidStream crashes parley itself: the events it accepted
// are in its spool and must be delivered, to both brokers, after the
// restart.
func TestParleyKill9MidStream(t *testing.T) {
	requireFaultTests(t)
	dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	run := runID(t)
	createTopic(t, seeds, "fault-"+run, 3)
	scenario{
		fault: "kill -9 parley, restart",
		endpoints: func(run string) string {
			return "event_broker:\n" + sqlYAML(dsn, tableName(run)) + kafkaYAML(seeds, "fault-"+run)
		},
		inject: func(t *testing.T, p *parley) {
			p.kill9()
			if err := p.start(); err != nil {
				t.Errorf("restart parley: %v", err)
			}
		},
		count: map[string]func(*testing.T, string, *load) *tally{
			"sql":   func(t *testing.T, run string, l *load) *tally { return countSQL(t, dsn, tableName(run), l) },
			"kafka": func(t *testing.T, run string, l *load) *tally { return countKafka(t, seeds, "fault-"+run, l) },
		},
	}.run(t, run)
}
