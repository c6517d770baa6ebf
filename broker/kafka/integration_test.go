package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/internal/testenv"
)

// These tests run against the real Kafka of scripts/services.sh: one
// KRaft broker with a listener per security protocol and topic
// auto-creation off.

// kafkaTarget reaches the real Kafka over PLAINTEXT.
func kafkaTarget(t testing.TB) target {
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	c := Config{Seeds: strings.Split(seeds, ","), SecurityProtocol: Plaintext}
	return target{cfg: c, opts: []kgo.Opt{kgo.SeedBrokers(c.Seeds...)}}
}

// secureTarget reaches the real Kafka through the listener of protocol
// p; the plain clients that create topics and check records keep using
// the PLAINTEXT listener of the same broker.
func secureTarget(t testing.TB, p SecurityProtocol, mechanism string) target {
	tg := kafkaTarget(t)
	c := Config{SecurityProtocol: p, SASLMechanism: mechanism}
	switch p {
	case SASLPlaintext:
		c.Seeds = strings.Split(testenv.Get(t, "PARLEY_KAFKA_SASL_SEEDS"), ",")
	case SSL:
		c.Seeds = strings.Split(testenv.Get(t, "PARLEY_KAFKA_SSL_SEEDS"), ",")
	case SASLSSL:
		c.Seeds = strings.Split(testenv.Get(t, "PARLEY_KAFKA_SASL_SSL_SEEDS"), ",")
	default:
		c.Seeds = tg.cfg.Seeds
	}
	if p.SASL() {
		c.SASLUsername = testenv.Get(t, "PARLEY_KAFKA_SASL_USER")
		c.SASLPassword = testenv.Get(t, "PARLEY_KAFKA_SASL_PASSWORD")
	}
	if p.TLS() {
		c.CAFile = testenv.Get(t, "PARLEY_KAFKA_TLS_CA")
		c.CertFile = testenv.Get(t, "PARLEY_KAFKA_TLS_CERT")
		c.KeyFile = testenv.Get(t, "PARLEY_KAFKA_TLS_KEY")
	}
	tg.cfg = c
	return tg
}

func TestConformanceKafka(t *testing.T) {
	tg := kafkaTarget(t)
	t.Run("one partition", func(t *testing.T) { brokertest.Run(t, harness(tg, 1, false)) })
	t.Run("partition_by_sender", func(t *testing.T) { brokertest.Run(t, harness(tg, 3, true)) })
	t.Run("exactly_once", func(t *testing.T) { brokertest.Run(t, harnessWith(tg, 3, true, true)) })
}

func TestFixtureBytesKafka(t *testing.T) { testFixtureBytes(t, kafkaTarget(t)) }

func TestOrderPerSenderPartitionedKafka(t *testing.T) {
	testOrderPerSenderPartitioned(t, kafkaTarget(t))
}

func TestMissingTopicKafka(t *testing.T) { testMissingTopic(t, kafkaTarget(t)) }

func TestCreateTopicKafka(t *testing.T) { testCreateTopic(t, kafkaTarget(t)) }

func TestSecurityProtocolsKafka(t *testing.T) {
	cases := []struct {
		name      string
		protocol  SecurityProtocol
		mechanism string
		edit      func(*Config)
	}{
		{"PLAINTEXT", Plaintext, "", nil},
		{"SASL_PLAINTEXT PLAIN", SASLPlaintext, MechanismPlain, nil},
		{"SASL_PLAINTEXT SCRAM-SHA-256", SASLPlaintext, MechanismScramSHA256, nil},
		{"SASL_PLAINTEXT SCRAM-SHA-512", SASLPlaintext, MechanismScramSHA512, nil},
		{"SSL with client certificate", SSL, "", nil},
		{"SSL with hostname check", SSL, "", func(c *Config) { c.CheckHostname = true }},
		{"SSL without client certificate", SSL, "", func(c *Config) { c.CertFile, c.KeyFile = "", "" }},
		{"SASL_SSL PLAIN", SASLSSL, MechanismPlain, nil},
		{"SASL_SSL SCRAM-SHA-512", SASLSSL, MechanismScramSHA512, func(c *Config) { c.CheckHostname = true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := secureTarget(t, tc.protocol, tc.mechanism)
			b, topic := tg.open(t, 1, tc.edit)
			publishAndRead(t, b, tg.opts, topic)
			if err := b.Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

func TestWrongPasswordKafka(t *testing.T) {
	for _, p := range []SecurityProtocol{SASLPlaintext, SASLSSL} {
		for _, m := range []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512} {
			t.Run(string(p)+" "+m, func(t *testing.T) { testWrongPassword(t, secureTarget(t, p, m)) })
		}
	}
}

// TestTLSWrongCAKafka: a CA that did not sign the broker's certificate
// fails Open with a TLS error, not a warning about reachability.
func TestTLSWrongCAKafka(t *testing.T) {
	tg := secureTarget(t, SSL, "")
	other := newTestPKI(t, "127.0.0.1")
	c := tg.cfg
	c.CAFile = other.caFile
	c.Topic = newTopicName("tls")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, c, quietLogger(t))
	if err == nil {
		b.Close(ctx)
		t.Fatal("Open succeeded with a CA that did not sign the broker's certificate")
	}
	if !strings.Contains(err.Error(), "TLS handshake") || !strings.Contains(err.Error(), "ssl_cafile") {
		t.Fatalf("Open = %v, want a TLS error naming ssl_cafile", err)
	}
}

// TestMessageTooLargeKafka: a topic whose max.message.bytes is below
// parley's max_message_bytes refuses the batch; the error is permanent and
// says which key to lower.
func TestMessageTooLargeKafka(t *testing.T) {
	tg := kafkaTarget(t)
	topic := newTopicName("small")
	cl, err := kgo.NewClient(tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	limit := "65536"
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{"max.message.bytes": &limit}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	deleteTopic(t, tg.opts, topic)
	c := tg.cfg
	c.Topic = topic
	b, err := Open(ctx, c, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	err = b.Publish(ctx, mustEvent(t, "s", strings.Repeat("x", 100000)))
	if !errors.Is(err, broker.ErrPermanent) || !strings.Contains(err.Error(), "max_message_bytes") {
		t.Fatalf("Publish = %v, want a permanent error naming max_message_bytes", err)
	}
	// Small events still go through.
	publishAndRead(t, b, tg.opts, topic)
}
