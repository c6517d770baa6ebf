package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/config"
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
	Replayed   int64   `json:"client_retries_replayed"`
	MaxDup     int     `json:"duplicates_allowed"`
	Outage     float64 `json:"outage_seconds"`
	Recovery   float64 `json:"recovery_seconds"`
	Total      float64 `json:"total_seconds"`
}

func (r result) check(t *testing.T) {
	t.Helper()
	t.Logf("%s: %d accepted, %d delivered, %d lost, %d duplicated (%d allowed), %d client retries (%d replayed), outage %.1fs, recovery %.1fs, total %.1fs",
		r.Fault, r.Events, r.Delivered, r.Lost, r.Duplicated, r.MaxDup, r.Retries, r.Replayed, r.Outage, r.Recovery, r.Total)
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
	if r.Duplicated > r.MaxDup {
		t.Errorf("%d events delivered twice, more than the %d allowed (docs/reliability.md)", r.Duplicated, r.MaxDup)
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
	// maxDup bounds the duplicates of each destination: 0 (absent) for
	// the exactly-once ones, read read_committed.
	maxDup map[string]int
}

// rabbitMQMaxDup is what docs/reliability.md allows RabbitMQ per
// connection loss: the spool batch unconfirmed when it dropped, twice if
// a publish timed out meanwhile (two batches of max_batch, default 500).
const rabbitMQMaxDup = 2 * 500

func (sc scenario) run(t *testing.T, run string) {
	p := newParley(t, sc.endpoints(run))
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	idem := idempotentIngest(t, p.url(), run)
	l := newLoad(p.url(), run, events)
	var down, up time.Time
	l.when(events*3/10, func() {
		down = time.Now()
		sc.inject(t, p)
		up = time.Now()
	})
	start := time.Now()
	l.run(context.Background(), t)
	defer func() {
		// Evidence that unknown outcomes happened and were settled.
		p.mu.Lock()
		logs := p.logs.String()
		p.mu.Unlock()
		for name := range sc.count {
			settled, resumed := 0, 0
			for _, line := range strings.Split(logs, "\n") {
				if !strings.Contains(line, "broker="+name) {
					continue
				}
				if strings.Contains(line, "not writing them again") {
					settled++
				}
				if strings.Contains(line, "resuming at the position the destination recorded") {
					resumed++
				}
			}
			t.Logf("%s: parley settled %d writes whose commit went through unseen, and resumed %d times from the destination's position", name, settled, resumed)
		}
	}()
	for name, count := range sc.count {
		ta := count(t, run, l)
		lost, dup := ta.report(t, l)
		fault := sc.fault
		if len(sc.count) > 1 {
			fault += " (" + name + ")"
		}
		maxDup := sc.maxDup[name]
		if !idem {
			// Without Idempotency-Key support in this parley, a retried
			// request whose answer was lost is accepted again.
			maxDup += int(l.retries.Load()) * l.batch
			t.Logf("parley does not honour Idempotency-Key on POST /events: each of the %d client retries may add %d duplicates", l.retries.Load(), l.batch)
		}
		result{Test: t.Name(), Fault: fault, Events: int(l.accepted.Load()), Delivered: ta.distinct(), Lost: lost, Duplicated: dup,
			Retries: l.retries.Load(), Replayed: l.replayed.Load(), MaxDup: maxDup,
			Outage: up.Sub(down).Seconds(), Recovery: time.Since(up).Seconds(), Total: time.Since(start).Seconds()}.check(t)
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
		maxDup: map[string]int{"pika": rabbitMQMaxDup},
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

// TestNetworkCutsDuringCommits cuts parley's connections to PostgreSQL and
// to Kafka, each time right after a commit left for the service and before
// its answer came back, so parley cannot know whether it committed. Both
// destinations must still hold every event exactly once.
func TestNetworkCutsDuringCommits(t *testing.T) {
	requireFaultTests(t)
	dsn := testenv.Get(t, "PARLEY_POSTGRES_DSN")
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	pg := newProxy(t, "127.0.0.1:5432", false)
	kafka := newProxy(t, strings.Split(seeds, ",")[0], true)
	if !strings.Contains(dsn, "@127.0.0.1:5432/") {
		t.Skipf("the PostgreSQL DSN %q is not the local one this test proxies", config.RedactURL(dsn))
	}
	proxied := strings.Replace(dsn, "@127.0.0.1:5432/", "@"+pg.addr()+"/", 1)
	run := runID(t)
	createTopic(t, seeds, "fault-"+run, 3)
	const cuts = 3
	scenario{
		fault: fmt.Sprintf("%d network cuts during commits (PostgreSQL and Kafka)", cuts),
		endpoints: func(run string) string {
			return "event_broker:\n" + sqlYAML(proxied, tableName(run)) + kafkaYAML(kafka.addr(), "fault-"+run)
		},
		inject: func(t *testing.T, _ *parley) {
			var atCommit atomic.Int32
			for i := 0; i < cuts; i++ {
				var wg sync.WaitGroup
				for _, p := range []*proxy{pg, kafka} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if p.cutAtNextCommit(5 * time.Second) {
							atCommit.Add(1)
						}
					}()
				}
				wg.Wait()
				time.Sleep(time.Second) // the outage itself
				pg.restore()
				kafka.restore()
				time.Sleep(500 * time.Millisecond) // traffic again before the next cut
			}
			t.Logf("%d of %d cuts came right after a commit was sent", atCommit.Load(), 2*cuts)
		},
		count: map[string]func(*testing.T, string, *load) *tally{
			"sql":   func(t *testing.T, run string, l *load) *tally { return countSQL(t, dsn, tableName(run), l) },
			"kafka": func(t *testing.T, run string, l *load) *tally { return countKafka(t, seeds, "fault-"+run, l) },
		},
	}.run(t, run)
}
