package rabbitmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/testenv"
)

func TestConformance(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	brokertest.Run(t, brokertest.Harness{
		Features: brokertest.Features{GlobalOrder: true, EventIDs: true},
		Open: func(t *testing.T) brokertest.Destination {
			c := testConfig(t, url, 1, nil)
			b := openBroker(t, c)
			r := &reader{url: url, queue: c.Queues[0]}
			return brokertest.Destination{Broker: b, Read: r.destination}
		},
	})
}

func readN(t *testing.T, url, queue string, n int) []amqp.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := (&reader{url: url, queue: queue}).read(ctx, n)
	if err != nil {
		t.Fatalf("read %s: %v", queue, err)
	}
	if len(got) != n {
		t.Fatalf("queue %s holds %d messages, want %d", queue, len(got), n)
	}
	return got
}

func TestEveryQueueGetsEveryEventInRasaBytes(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 3, nil)
	b := openBroker(t, c)
	evs, want := brokertest.FixtureEvents(t)
	if err := b.Publish(context.Background(), evs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for _, q := range c.Queues {
		got := readN(t, url, q, len(evs))
		var file bytes.Buffer
		for i, d := range got {
			if !bytes.Equal(d.Body, want[i]) {
				t.Fatalf("queue %s message %d:\n got %s\nwant %s", q, i, d.Body, want[i])
			}
			file.Write(d.Body)
			file.WriteByte('\n')
		}
		if !bytes.Equal(file.Bytes(), fixtures.RasaNDJSON()) {
			t.Fatalf("queue %s: bodies differ from events.rasa.ndjson", q)
		}
	}
}

func TestMessageProperties(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	evs, _ := brokertest.FixtureEvents(t)
	live := evs[0]
	exported := evs[1].Exported()
	exported.ID = "exported-1"
	exported.Headers = map[string]string{"rasa-export-process-id": "0123456789abcdef0123456789abcdef"}

	for _, rasaEnv := range []string{"", "production"} {
		t.Run("RASA_ENVIRONMENT="+rasaEnv, func(t *testing.T) {
			t.Setenv(EnvRasaEnvironment, rasaEnv) // read by ParseConfig, as Rasa reads it
			c := testConfig(t, url, 1, nil)
			b := openBroker(t, c)
			if err := b.Publish(context.Background(), live, exported); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := readN(t, url, c.Queues[0], 2)
			for i, ev := range []event.Event{live, exported} {
				d := got[i]
				if !bytes.Equal(d.Body, ev.RasaJSON()) {
					t.Errorf("message %d body %s, want %s", i, d.Body, ev.RasaJSON())
				}
				if d.DeliveryMode != amqp.Persistent {
					t.Errorf("message %d delivery_mode %d, want 2", i, d.DeliveryMode)
				}
				if d.AppId != rasaEnv {
					t.Errorf("message %d app_id %q, want %q", i, d.AppId, rasaEnv)
				}
				if d.MessageId != ev.ID {
					t.Errorf("message %d message_id %q, want %q", i, d.MessageId, ev.ID)
				}
				if d.ContentType != "" || d.ContentEncoding != "" || d.Type != "" || d.CorrelationId != "" || !d.Timestamp.IsZero() {
					t.Errorf("message %d has properties Rasa does not set: %+v", i, d)
				}
				if d.Exchange != c.Exchange || d.RoutingKey != "" {
					t.Errorf("message %d came through exchange %q key %q, want %q and \"\"", i, d.Exchange, d.RoutingKey, c.Exchange)
				}
			}
			// Rasa sends an empty table; parley's holds only the event ID.
			if len(got[0].Headers) != 1 || got[0].Headers[EventIDHeader] != live.ID {
				t.Errorf("live event header table %v, want only %s=%s", got[0].Headers, EventIDHeader, live.ID)
			}
			if got[1].Headers[EventIDHeader] != exported.ID {
				t.Errorf("exported event header %s = %v, want %s", EventIDHeader, got[1].Headers[EventIDHeader], exported.ID)
			}
			if h := got[1].Headers["rasa-export-process-id"]; h != exported.Headers["rasa-export-process-id"] {
				t.Errorf("exported event header rasa-export-process-id = %v, want %s", h, exported.Headers["rasa-export-process-id"])
			}
			if !bytes.HasSuffix(got[1].Body, []byte(`"sender_id": "`+exported.SenderID+`"}`)) {
				t.Errorf("exported event does not end with sender_id as rasa export writes it: %s", got[1].Body)
			}
		})
	}
}

// TestOpenOnRasaTopology declares the exchange and queue as Rasa (aio-pika)
// does, then opens parley's broker on them: the declarations must match,
// or RabbitMQ would refuse them with PRECONDITION_FAILED.
func TestOpenOnRasaTopology(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	a := newAdmin(t, url)
	// channel.declare_exchange(name, type=FANOUT): durable=False, auto_delete=False.
	if err := a.ch.ExchangeDeclare(c.Exchange, "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// channel.declare_queue(name, durable=True); queue.bind(exchange, "").
	if _, err := a.ch.QueueDeclare(c.Queues[0], true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.ch.QueueBind(c.Queues[0], "", c.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	// Rasa's declaration again, after parley's: still equivalent.
	b := openBroker(t, c)
	if err := a.ch.ExchangeDeclare(c.Exchange, "fanout", false, false, false, false, nil); err != nil {
		t.Fatalf("Rasa's exchange declaration after parley's: %v", err)
	}
	if _, err := a.ch.QueueDeclare(c.Queues[0], true, false, false, false, nil); err != nil {
		t.Fatalf("Rasa's queue declaration after parley's: %v", err)
	}
	if err := b.Publish(context.Background(), brokertest.Seq("s", 0)); err != nil {
		t.Fatal(err)
	}
	readN(t, url, c.Queues[0], 1)
}

// TestOpenOnOtherTopology: an exchange and queue that exist with other
// properties (a durable exchange, a quorum queue) are used as they are.
func TestOpenOnOtherTopology(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	a := newAdmin(t, url)
	if err := a.ch.ExchangeDeclare(c.Exchange, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ch.QueueDeclare(c.Queues[0], true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, c)
	if err := b.Publish(context.Background(), brokertest.Seq("s", 0), brokertest.Seq("s", 1)); err != nil {
		t.Fatal(err)
	}
	readN(t, url, c.Queues[0], 2)
}

// TestUnroutableIsNotDelivered deletes the queue behind the broker's back:
// RabbitMQ returns the message, Publish must fail, and the queue is
// redeclared for the next attempt.
func TestUnroutableIsNotDelivered(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	b := openBroker(t, c)
	a := newAdmin(t, url)
	if _, err := a.ch.QueueDelete(c.Queues[0], false, false, false); err != nil {
		t.Fatal(err)
	}
	err := b.Publish(context.Background(), brokertest.Seq("s", 0), brokertest.Seq("s", 1))
	if !errors.Is(err, ErrUnroutable) {
		t.Fatalf("Publish to an exchange without queues = %v, want ErrUnroutable", err)
	}
	// The broker redeclares the queue in the background; a retry works.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := broker.PublishRetry(ctx, b, []event.Event{brokertest.Seq("s", 2)}, broker.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}, nil); err != nil {
		t.Fatalf("Publish after the queue was redeclared: %v", err)
	}
	got := readN(t, url, c.Queues[0], 1)
	if got[0].MessageId != "s-000002" {
		t.Fatalf("queue holds %s, want s-000002", got[0].MessageId)
	}
}

// TestExchangeDeletedIsRedeclared deletes the exchange behind the broker's
// back: RabbitMQ closes the channel (NOT_FOUND), and the broker reconnects,
// redeclares and republishes.
func TestExchangeDeletedIsRedeclared(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	b := openBroker(t, c)
	a := newAdmin(t, url)
	if err := a.ch.ExchangeDelete(c.Exchange, false, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Publish(ctx, brokertest.Seq("s", 0), brokertest.Seq("s", 1)); err != nil {
		t.Fatalf("Publish after the exchange was deleted: %v", err)
	}
	got := readN(t, url, c.Queues[0], 2)
	if got[0].MessageId != "s-000000" || got[1].MessageId != "s-000001" {
		t.Fatalf("queue holds %s, %s", got[0].MessageId, got[1].MessageId)
	}
}

// TestNackedIsNotDelivered uses a queue that rejects publishes when full,
// so that RabbitMQ nacks: Publish must not succeed until the message is
// really enqueued.
func TestNackedIsNotDelivered(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	a := newAdmin(t, url)
	args := amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"}
	if _, err := a.ch.QueueDeclare(c.Queues[0], true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, c)
	if err := b.Publish(context.Background(), brokertest.Seq("s", 0)); err != nil {
		t.Fatalf("Publish into an empty queue: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	err := b.Publish(ctx, brokertest.Seq("s", 1))
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full reject-publish queue = %v, want a deadline error", err)
	}
	// Waiting publish: it succeeds once the queue has room.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- b.Publish(ctx, brokertest.Seq("s", 2))
	}()
	// Take messages off the queue, one at a time, until s-2 is confirmed.
	// s-1, whose caller gave up, may take a free place first if it was
	// being republished at that moment: at-least-once.
	var ids []string
	var pubErr error
	eventually(t, 30*time.Second, "Publish of s-2 to return", func() bool {
		select {
		case pubErr = <-done:
			return true
		default:
		}
		d, ok, err := a.ch.Get(c.Queues[0], true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			ids = append(ids, d.MessageId)
		}
		return false
	})
	if pubErr != nil {
		t.Fatalf("Publish once the queue had room: %v", pubErr)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rest, err := (&reader{url: url, queue: c.Queues[0]}).read(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rest {
		ids = append(ids, d.MessageId)
	}
	want1, want2 := "[s-000000 s-000002]", "[s-000000 s-000001 s-000002]"
	if got := fmt.Sprint(ids); got != want1 && got != want2 {
		t.Fatalf("queue held %s, want %s or %s", got, want1, want2)
	}
}

func TestPingAndClose(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	b := openBroker(t, c)
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Ping(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
}

func TestBadCredentialsFailOpenAtOnce(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, map[string]any{"connection_attempts": 20, "retry_delay_in_seconds": 5})
	c.Password = "wrong-" + c.Password
	start := time.Now()
	_, err := Open(context.Background(), c, testLogger(t))
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "access") {
		t.Errorf("error does not say access was refused: %v", err)
	}
	if strings.Contains(err.Error(), c.Password) {
		t.Errorf("error shows the password: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Open took %v: it retried an error retrying cannot fix", d)
	}
}

func TestTLSClientCertificate(t *testing.T) {
	amqps := testenv.Get(t, "PARLEY_AMQPS_URL")
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	ca := testenv.Get(t, "PARLEY_AMQP_TLS_CA")
	cert := testenv.Get(t, "PARLEY_AMQP_TLS_CERT")
	key := testenv.Get(t, "PARLEY_AMQP_TLS_KEY")

	tests := []struct {
		name string
		env  map[string]string
		sec  func(c Config) map[string]any
	}{
		{
			name: "amqps URL with cacertfile and Rasa's client certificate variables",
			env:  map[string]string{EnvClientCert: cert, EnvClientKey: key},
			sec: func(Config) map[string]any {
				return map[string]any{"url": strings.TrimSuffix(amqps, "/") + "/?cacertfile=" + ca}
			},
		},
		{
			name: "plain host with Rasa's certificate variables and RABBITMQ_SSL_CA_FILE",
			env:  map[string]string{EnvClientCert: cert, EnvClientKey: key, EnvCAFile: ca},
			sec: func(c Config) map[string]any {
				return map[string]any{"url": "localhost", "username": c.Username, "password": c.Password}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			plain := testConfig(t, url, 1, nil)
			values := map[string]any{
				"type":            "pika",
				"exchange_name":   plain.Exchange,
				"queues":          plain.Queues,
				"connection_name": uniqueName(t, "conn"),
			}
			for k, v := range tc.sec(plain) {
				values[k] = v
			}
			c, err := ParseConfig(config.NewSection("test.yml", "event_broker", values))
			if err != nil {
				t.Fatal(err)
			}
			if !c.TLS || c.Port != 5671 || c.CertFile != cert {
				t.Fatalf("config: TLS %v port %d cert %q, want TLS on 5671 with %s", c.TLS, c.Port, c.CertFile, cert)
			}
			b := openBroker(t, c)
			if err := b.Publish(context.Background(), brokertest.Seq("tls", 0)); err != nil {
				t.Fatalf("Publish over TLS: %v", err)
			}
			readN(t, url, c.Queues[0], 1)
			// RabbitMQ saw the client certificate on this connection.
			out, err := exec.Command(servicesScript(t), "rabbitmqctl", "list_connections", "client_properties", "ssl", "peer_cert_subject").CombinedOutput()
			if err != nil {
				t.Fatalf("rabbitmqctl list_connections: %v\n%s", err, out)
			}
			found := false
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, c.ConnectionName) {
					found = true
					if !strings.Contains(line, "true") || !strings.Contains(line, "CN=") {
						t.Errorf("connection is not TLS with a client certificate: %s", line)
					}
				}
			}
			if !found {
				t.Errorf("connection %s not listed by rabbitmqctl:\n%s", c.ConnectionName, out)
			}
		})
	}

	t.Run("unknown CA fails Open at once", func(t *testing.T) {
		c := testConfig(t, url, 1, nil)
		c.TLS, c.Host, c.Port, c.CAFile = true, "localhost", 5671, ""
		start := time.Now()
		_, err := Open(context.Background(), c, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Open against a server signed by an unknown CA = %v, want a certificate error", err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("Open took %v: it retried an error retrying cannot fix", d)
		}
	})
}

// servicesScript finds scripts/services.sh from the test's working
// directory (the package directory).
func servicesScript(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root + "/scripts/services.sh"
}
