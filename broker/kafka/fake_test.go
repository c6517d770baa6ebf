package kafka

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
)

// These tests run against kfake, franz-go's in-process Kafka, and always
// run. integration_test.go runs the same and more against the real Kafka.

func TestConformanceFake(t *testing.T) {
	tg := fakeTarget(newFake(t))
	t.Run("one partition", func(t *testing.T) { brokertest.Run(t, harness(tg, 1, false)) })
	t.Run("partition_by_sender", func(t *testing.T) { brokertest.Run(t, harness(tg, 3, true)) })
}

func TestFixtureBytesFake(t *testing.T) { testFixtureBytes(t, fakeTarget(newFake(t))) }

func TestOrderPerSenderPartitionedFake(t *testing.T) {
	testOrderPerSenderPartitioned(t, fakeTarget(newFake(t)))
}

func TestMissingTopicFake(t *testing.T) { testMissingTopic(t, fakeTarget(newFake(t))) }

func TestCreateTopicFake(t *testing.T) { testCreateTopic(t, fakeTarget(newFake(t))) }

// TestAutoCreatedTopicFake: brokers with auto.create.topics.enable create
// the topic for the producer, as for Rasa's librdkafka producer.
func TestAutoCreatedTopicFake(t *testing.T) {
	tg := fakeTarget(newFake(t, kfake.AllowAutoTopicCreation()))
	c := tg.cfg
	c.Topic = newTopicName("auto")
	ctx := context.Background()
	b, err := Open(ctx, c, quietLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close(ctx)
	publishAndRead(t, b, tg.opts, c.Topic)
}

// TestTopicDeletedWhilePublishing: once the topic is gone, Publish fails
// with ErrTopicNotFound after a few metadata loads, instead of waiting for
// the caller's deadline.
func TestTopicDeletedWhilePublishing(t *testing.T) {
	tg := fakeTarget(newFake(t))
	b, topic := tg.open(t, 1, nil)
	ctx := context.Background()
	if err := b.Publish(ctx, seqEvents(3, 1)...); err != nil {
		t.Fatal(err)
	}
	if _, err := b.adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := b.Publish(pctx, seqEvents(3, 1)...)
	if !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Publish to a deleted topic = %v, want ErrTopicNotFound", err)
	}
	if errors.Is(err, broker.ErrPermanent) {
		t.Errorf("a missing topic can be created: the error must not be permanent")
	}
	if err := b.Ping(ctx); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Ping = %v, want ErrTopicNotFound", err)
	}
}

// TestUnreachableAtOpen: Kafka being down does not fail Open; Publish
// waits for it (and a canceled caller returns at once), and succeeds once
// Kafka is up.
func TestUnreachableAtOpen(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	c := Config{Seeds: []string{l.Addr().String()}, Topic: "later", probeTimeout: 300 * time.Millisecond}
	ctx := context.Background()
	b, err := Open(ctx, c, quietLogger(t))
	if err != nil {
		t.Fatalf("Open with Kafka down = %v, want success (publishes retry)", err)
	}
	defer b.Close(ctx)
	if err := b.Ping(ctx); err == nil {
		// Ping has no deadline here; use one.
		t.Fatal("Ping succeeded with Kafka down")
	}

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- b.Publish(cctx, seqEvents(5, 1)...) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Publish = %v, want context.Canceled", err)
	}

	// Kafka comes up on the seed's port: a waiting Publish goes through,
	// and so do the records of the canceled call.
	pctx, pcancel := context.WithTimeout(ctx, time.Minute)
	defer pcancel()
	go func() { errc <- b.Publish(pctx, seqEvents(5, 1)...) }()
	fake := newFake(t, kfake.Ports(port), kfake.SeedTopics(1, "later"))
	if err := <-errc; err != nil {
		t.Fatalf("Publish once Kafka is up: %v", err)
	}
	if err := b.Ping(pctx); err != nil {
		t.Fatalf("Ping once Kafka is up: %v", err)
	}
	recs, err := readTopic(pctx, fakeTarget(fake).opts, "later", 5)
	if err != nil || len(recs) < 5 {
		t.Fatalf("read %d records (%v), want at least 5", len(recs), err)
	}
}

func TestPingFake(t *testing.T) {
	tg := fakeTarget(newFake(t))
	b, _ := tg.open(t, 1, nil)
	ctx := context.Background()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
}

// TestCloseFlushesAbandoned: records of a Publish whose caller gave up are
// still delivered by Close.
func TestCloseFlushesAbandoned(t *testing.T) {
	fake := newFake(t)
	tg := fakeTarget(fake)
	b, topic := tg.open(t, 1, func(c *Config) { c.Linger = 0 })
	// Hold produce requests until Close runs, so the caller times out.
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once // the control sees the retries of the request too
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		once.Do(func() { close(reached) })
		<-release
		return nil, nil, false
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Publish(ctx, seqEvents(10, 2)...) }()
	<-reached // the records are in a produce request
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish = %v, want context.Canceled", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close(context.Background()) }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	recs, err := readTopic(rctx, tg.opts, topic, 10)
	if err != nil || len(recs) != 10 {
		t.Fatalf("read %d records (%v) after Close, want the 10 abandoned ones", len(recs), err)
	}
}

// TestMaxBufferedRecords: a Publish larger than the buffer goes through in
// pieces, and publishers waiting for room can be canceled.
func TestMaxBufferedRecords(t *testing.T) {
	tg := fakeTarget(newFake(t))
	b, topic := tg.open(t, 2, func(c *Config) { c.MaxBufferedRecords = 7 })
	ctx := context.Background()
	evs := seqEvents(100, 4)
	if err := b.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	recs, err := readTopic(rctx, tg.opts, topic, len(evs))
	if err != nil || len(recs) != len(evs) {
		t.Fatalf("read %d (%v), want %d", len(recs), err, len(evs))
	}
}

func TestSASLFake(t *testing.T) {
	const user, pass = "parley", "parley-secret"
	for _, mech := range []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			fake := newFake(t, kfake.EnableSASL(), kfake.Superuser(mech, user, pass))
			var m kgo.Opt
			switch mech {
			case MechanismPlain:
				m = kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())
			case MechanismScramSHA256:
				m = kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())
			default:
				m = kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
			}
			tg := target{
				cfg:  Config{Seeds: fake.ListenAddrs(), SecurityProtocol: SASLPlaintext, SASLMechanism: mech, SASLUsername: user, SASLPassword: pass},
				opts: []kgo.Opt{kgo.SeedBrokers(fake.ListenAddrs()...), m},
			}
			b, topic := tg.open(t, 1, nil)
			publishAndRead(t, b, tg.opts, topic)
			// kfake drops the connection on a wrong password where Kafka
			// answers SASL_AUTHENTICATION_FAILED, so testWrongPassword
			// runs against the real Kafka only.
		})
	}
}

// TestTopicAuthorizationFake: a user who may not see the topic cannot
// open the broker; one without WRITE gets a permanent error from Publish.
func TestTopicAuthorizationFake(t *testing.T) {
	const topic = "guarded"
	fake := newFake(t, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(MechanismPlain, "admin", "admin"),
		kfake.User(MechanismPlain, "reader", "reader",
			kfake.ACL{Allow: true, Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe},
			kfake.ACL{Allow: true, Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationIdempotentWrite},
		),
		kfake.User(MechanismPlain, "stranger", "stranger"),
		kfake.SeedTopics(1, topic))
	ctx := context.Background()

	// Not even allowed to describe the topic: Open fails.
	c := Config{Seeds: fake.ListenAddrs(), Topic: topic, SecurityProtocol: SASLPlaintext, SASLUsername: "stranger", SASLPassword: "stranger"}
	if b, err := Open(ctx, c, quietLogger(t)); err == nil || !errors.Is(err, broker.ErrPermanent) || !strings.Contains(err.Error(), "not authorized") {
		if b != nil {
			b.Close(ctx)
		}
		t.Fatalf("Open without DESCRIBE = %v, want a permanent 'not authorized' error", err)
	}

	c.SASLUsername, c.SASLPassword = "reader", "reader"
	b, err := Open(ctx, c, quietLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close(ctx)
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = b.Publish(pctx, seqEvents(2, 1)...)
	if !errors.Is(err, broker.ErrPermanent) || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("Publish without WRITE = %v, want a permanent 'not authorized' error", err)
	}
}

func TestTLSFake(t *testing.T) {
	pki := newTestPKI(t, "localhost") // not 127.0.0.1, which the client dials
	other := newTestPKI(t, "localhost")
	fake := newFake(t, kfake.TLS(pki.server), kfake.AllowAutoTopicCreation())
	base := Config{Seeds: fake.ListenAddrs(), SecurityProtocol: SSL, CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile}
	cases := []struct {
		name    string
		edit    func(*Config)
		wantErr string // "" for success
	}{
		{"chain verified, hostname not checked (Rasa's default)", nil, ""},
		{"without a client certificate", func(c *Config) { c.CertFile, c.KeyFile = "", "" }, ""},
		{"hostname checked", func(c *Config) { c.CheckHostname = true }, "TLS handshake"},
		{"another CA", func(c *Config) { c.CAFile = other.caFile }, "TLS handshake"},
		{"missing CA file", func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "ssl_cafile"},
		{"CA file without PEM", func(c *Config) { c.CAFile = pki.keyFile + ".none"; writeFile(t, c.CAFile, "not pem") }, "ssl_cafile"},
		{"key file holds a certificate", func(c *Config) { c.KeyFile = pki.certFile }, "ssl_keyfile"},
		{"missing cert file", func(c *Config) { c.CertFile = "/nonexistent/client.pem" }, "ssl_certfile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.Topic = newTopicName("tls")
			c.probeTimeout = 10 * time.Second
			if tc.edit != nil {
				tc.edit(&c)
			}
			ctx := context.Background()
			b, err := Open(ctx, c, quietLogger(t))
			if tc.wantErr != "" {
				if err == nil {
					b.Close(ctx)
					t.Fatalf("Open succeeded, want an error mentioning %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want an error mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			// Open's metadata request auto-created the topic over TLS.
			if err := b.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
			b.Close(ctx)
		})
	}
	// And a full round trip.
	tcfg, err := base.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	tg := target{cfg: base, opts: []kgo.Opt{kgo.SeedBrokers(fake.ListenAddrs()...), kgo.DialTLSConfig(tcfg)}}
	b, topic := tg.open(t, 1, nil)
	publishAndRead(t, b, tg.opts, topic)
}

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCompressionFake: every codec round-trips.
func TestCompressionFake(t *testing.T) {
	tg := fakeTarget(newFake(t))
	for _, codec := range compressions {
		t.Run(codec, func(t *testing.T) {
			b, topic := tg.open(t, 1, func(c *Config) { c.Compression = codec })
			publishAndRead(t, b, tg.opts, topic)
		})
	}
}

// TestTopicRecreated: with create_topic, a topic deleted while parley runs
// is created again, and the caller's retry goes through.
func TestTopicRecreated(t *testing.T) {
	tg := fakeTarget(newFake(t))
	b, topic := tg.open(t, 1, func(c *Config) { c.CreateTopic, c.Partitions = true, 2 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	err := b.Publish(ctx, seqEvents(3, 1)...)
	if !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Publish = %v, want ErrTopicNotFound", err)
	}
	if err := b.Publish(ctx, seqEvents(3, 1)...); err != nil {
		t.Fatalf("retry after the topic was recreated: %v", err)
	}
	md, err := b.adm.Metadata(ctx, topic)
	if err != nil || len(md.Topics[topic].Partitions) != 2 {
		t.Fatalf("recreated topic: %v, %d partitions, want 2", err, len(md.Topics[topic].Partitions))
	}
}
