package kafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

// SecurityProtocol is how the client talks to the brokers, spelled as
// Kafka and librdkafka spell it.
type SecurityProtocol string

// The security protocols Rasa accepts.
const (
	Plaintext     SecurityProtocol = "PLAINTEXT"
	SASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	SSL           SecurityProtocol = "SSL"
	SASLSSL       SecurityProtocol = "SASL_SSL"
)

var securityProtocols = []SecurityProtocol{Plaintext, SASLPlaintext, SSL, SASLSSL}

// SASL reports whether the protocol authenticates with SASL.
func (p SecurityProtocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// TLS reports whether the protocol encrypts with TLS.
func (p SecurityProtocol) TLS() bool { return p == SSL || p == SASLSSL }

// The SASL mechanisms parley speaks. GSSAPI (Kerberos), which Rasa lists,
// is rejected at configuration time.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

var saslMechanisms = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512, MechanismOAuthBearer}

// Compression codecs for produced batches.
const (
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionZstd   = "zstd"
)

var compressions = []string{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}

// Partitioners choose the partition of a keyed record.
const (
	// PartitionerConsistentRandom is librdkafka's default, which Rasa uses:
	// CRC-32 (IEEE) of the key modulo the partition count, a random
	// partition for an empty key.
	PartitionerConsistentRandom = "consistent_random"
	// PartitionerMurmur2 is the Java client's default (and Kafka Streams'):
	// murmur2 of the key, sign bit cleared, modulo the partition count.
	PartitionerMurmur2 = "murmur2"
)

var partitioners = []string{PartitionerConsistentRandom, PartitionerMurmur2}

// Defaults of the keys that have one.
const (
	DefaultTopic              = "rasa_core_events"
	DefaultClientID           = "parley"
	DefaultPartitions         = 3
	DefaultReplicationFactor  = -1
	DefaultLinger             = 0
	DefaultMaxBufferedRecords = 10000
	DefaultMaxMessageBytes    = 1000012
	// DefaultPort is the port of a url entry without one, as librdkafka
	// assumes.
	DefaultPort = 9092
)

// Config is the kafka broker's endpoints.yml section. The keys Rasa 3.6's
// KafkaEventBroker reads mean what they mean there; the parley keys are
// additions a Rasa endpoints.yml simply lacks.
type Config struct {
	// Seeds are the bootstrap brokers, host:port (Rasa key url, required:
	// a comma-separated string as Rasa passes it to librdkafka, or a YAML
	// list; a missing port means 9092, a "SASL_SSL://" style prefix is
	// dropped).
	Seeds []string
	// Topic receives every event (Rasa key topic, default
	// rasa_core_events).
	Topic string
	// ClientID names the producer in the brokers' logs and quotas (Rasa
	// key client_id; default "parley", where Rasa leaves librdkafka's
	// "rdkafka").
	ClientID string
	// PartitionBySender keys each record with its sender_id (UTF-8), so that
	// a conversation stays on one partition, in order (Rasa key
	// partition_by_sender, default false: no key).
	PartitionBySender bool

	// SecurityProtocol is PLAINTEXT, SASL_PLAINTEXT, SSL or SASL_SSL (Rasa
	// key security_protocol, case-insensitive). Rasa defaults to
	// SASL_PLAINTEXT, which cannot work without credentials: when the key
	// is absent parley uses SASL_PLAINTEXT if sasl_username is given and
	// PLAINTEXT otherwise, with a warning.
	SecurityProtocol SecurityProtocol
	// ProtocolDefaulted is set when security_protocol was absent and
	// PLAINTEXT was chosen instead of Rasa's SASL_PLAINTEXT.
	ProtocolDefaulted bool
	// SASLMechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER
	// (Rasa key sasl_mechanism, default PLAIN; GSSAPI is not supported).
	SASLMechanism string
	// SASLUsername and SASLPassword are the SASL credentials (Rasa keys
	// sasl_username, sasl_password), required by PLAIN and SCRAM.
	SASLUsername, SASLPassword string
	// OAuthToken is the bearer token OAUTHBEARER sends (parley key
	// sasl_oauth_token; when absent sasl_password is the token). It is
	// sent as is and not refreshed: restart parley with a new token
	// before it expires.
	OAuthToken string

	// CAFile verifies the brokers' certificates (Rasa key ssl_cafile, PEM;
	// default the system's roots).
	CAFile string
	// CertFile and KeyFile are the client certificate and key for brokers
	// that ask for one (Rasa keys ssl_certfile, ssl_keyfile, PEM; the key
	// may also sit in CertFile).
	CertFile, KeyFile string
	// CheckHostname verifies that the broker's certificate names the host
	// dialed (Rasa key ssl_check_hostname, default false as in Rasa). The
	// certificate chain is verified either way.
	CheckHostname bool

	// ConvertIntentIDToString turns parse_data.intent.id of user events
	// into a string, as Rasa 2's kafka-python broker did for consumers that
	// cannot hold 64-bit integers (Rasa key convert_intent_id_to_string,
	// default false; Rasa 3 accepts and ignores it).
	ConvertIntentIDToString bool

	// CreateTopic creates Topic at Open when it does not exist (parley key
	// create_topic, default false: a missing topic is an error).
	CreateTopic bool
	// Partitions and ReplicationFactor shape a topic parley creates (parley
	// keys partitions, default 3, and replication_factor, default -1: the
	// broker's default.replication.factor).
	Partitions        int32
	ReplicationFactor int16

	// Format is the JSON written as the record value (parley key format:
	// rasa, the default, Rasa's exact bytes; or compact).
	Format event.Format
	// Linger is how long a partition's batch waits for more records before
	// it is sent (parley key linger, default 0: at once). Publish waits for
	// the acknowledgement, so a linger adds to every call's latency; without
	// one the client still batches what concurrent publishers produce while
	// a request is in flight, which measured fastest (docs/kafka.md).
	Linger time.Duration
	// MaxBufferedRecords bounds the records produced but not yet
	// acknowledged; Publish waits for room (parley key
	// max_buffered_records, default 10000).
	MaxBufferedRecords int
	// MaxMessageBytes is the largest record batch sent; an event that
	// cannot fit is refused with a permanent error before anything is sent
	// (parley key max_message_bytes, default 1000012, Kafka's
	// max.message.bytes default).
	MaxMessageBytes int
	// Compression compresses batches: none (default, as Rasa), gzip,
	// snappy, lz4 or zstd (parley key compression).
	Compression string
	// Partitioner places keyed records: consistent_random (default,
	// librdkafka's and so Rasa's, so that a sender lands on the partition
	// Rasa would have chosen) or murmur2 (the Java client's) (parley key
	// partitioner).
	Partitioner string

	// ExactlyOnce makes what the spool delivers go in Kafka transactions
	// that also record the spool's position, so that no crash, cut or
	// commit with an unknown outcome writes an event twice for consumers
	// reading read_committed (parley key exactly_once, default true; false
	// keeps the plain idempotent producer, at least once, slightly faster;
	// see docs/kafka.md).
	ExactlyOnce bool
	// PositionsTopic holds the position each spool stream has written,
	// one compacted partition created if missing (parley key
	// positions_topic, default parley_positions).
	PositionsTopic string

	// probeTimeout bounds Open's metadata check (openProbeTimeout when
	// zero); tests shorten it.
	probeTimeout time.Duration
}

// ParseConfig decodes and validates a section. It reads no files and
// opens no connections; certificate files are read by Open.
func ParseConfig(sec *config.Section) (Config, error) {
	c := Config{
		Seeds:                   sec.StringList("url", nil),
		Topic:                   strings.TrimSpace(sec.String("topic", DefaultTopic)),
		ClientID:                sec.String("client_id", DefaultClientID),
		PartitionBySender:       sec.Bool("partition_by_sender", false),
		SASLMechanism:           strings.ToUpper(strings.TrimSpace(sec.String("sasl_mechanism", MechanismPlain))),
		SASLUsername:            sec.String("sasl_username", ""),
		SASLPassword:            sec.String("sasl_password", ""),
		OAuthToken:              sec.String("sasl_oauth_token", ""),
		CAFile:                  sec.String("ssl_cafile", ""),
		CertFile:                sec.String("ssl_certfile", ""),
		KeyFile:                 sec.String("ssl_keyfile", ""),
		CheckHostname:           sec.Bool("ssl_check_hostname", false),
		ConvertIntentIDToString: sec.Bool("convert_intent_id_to_string", false),
		CreateTopic:             sec.Bool("create_topic", false),
		Linger:                  sec.Duration("linger", DefaultLinger),
		MaxBufferedRecords:      sec.Int("max_buffered_records", DefaultMaxBufferedRecords),
		MaxMessageBytes:         int(sec.Size("max_message_bytes", DefaultMaxMessageBytes)),
		Compression:             strings.ToLower(strings.TrimSpace(sec.String("compression", CompressionNone))),
		Partitioner:             strings.ToLower(strings.TrimSpace(sec.String("partitioner", PartitionerConsistentRandom))),
		ExactlyOnce:             sec.Bool("exactly_once", true),
		PositionsTopic:          strings.TrimSpace(sec.String("positions_topic", DefaultPositionsTopic)),
	}
	// Rasa reads these and does nothing parley needs: queue_size sizes
	// librdkafka's queue (parley bounds its buffer with
	// max_buffered_records) and loglevel sets the Python kafka logger
	// (parley logs through its own logger).
	if sec.String("queue_size", "") != "" {
		sec.Warnf("queue_size", "accepted for Rasa compatibility and ignored: parley bounds its buffer with max_buffered_records")
	}
	if sec.String("loglevel", "") != "" {
		sec.Warnf("loglevel", "accepted for Rasa compatibility and ignored: parley's --log-level applies")
	}

	if len(c.Seeds) == 0 {
		sec.Errorf("url", "is required: the Kafka bootstrap servers, e.g. url: localhost:9092 (a comma-separated string or a list)")
	}
	for i, s := range c.Seeds {
		seed, err := normalizeSeed(s)
		if err != nil {
			sec.Errorf("url", "%v", err)
			continue
		}
		c.Seeds[i] = seed
	}
	if c.Topic == "" {
		sec.Errorf("topic", "must not be empty")
	} else if err := validTopic(c.Topic); err != nil {
		sec.Errorf("topic", "%v", err)
	}

	if err := validTopic(c.PositionsTopic); c.PositionsTopic == "" || err != nil {
		sec.Errorf("positions_topic", "%q is not a valid topic name", c.PositionsTopic)
	} else if c.PositionsTopic == c.Topic {
		sec.Errorf("positions_topic", "must differ from topic (%q)", c.Topic)
	}

	c.SecurityProtocol = parseProtocol(sec, c.SASLUsername)
	if c.SecurityProtocol == Plaintext && !sec.Has("security_protocol") {
		c.ProtocolDefaulted = true
	}
	c.checkSASL(sec)
	c.checkTLS(sec)

	c.Partitions = int32(sec.Int("partitions", DefaultPartitions))
	if c.Partitions < 1 && c.Partitions != -1 {
		sec.Errorf("partitions", "must be at least 1 (or -1 for the broker's num.partitions)")
	}
	rf := sec.Int("replication_factor", DefaultReplicationFactor)
	if rf < -1 || rf == 0 || rf > 32767 {
		sec.Errorf("replication_factor", "must be at least 1 (or -1 for the broker's default.replication.factor)")
	}
	c.ReplicationFactor = int16(rf)
	if (sec.Has("partitions") || sec.Has("replication_factor")) && !c.CreateTopic {
		key := "partitions"
		if !sec.Has(key) {
			key = "replication_factor"
		}
		sec.Warnf(key, "only used when parley creates the topic (create_topic: true); ignored")
	}

	if f, ok := event.ParseFormat(strings.ToLower(strings.TrimSpace(sec.String("format", "rasa")))); ok {
		c.Format = f
	} else {
		sec.Errorf("format", "must be rasa or compact")
	}
	if c.Linger > time.Minute {
		sec.Errorf("linger", "%v is longer than the 1m maximum (a few milliseconds is usual)", c.Linger)
	}
	if c.MaxBufferedRecords < 1 {
		sec.Errorf("max_buffered_records", "must be at least 1")
	}
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > 100<<20 {
		sec.Errorf("max_message_bytes", "must be between 1KiB and 100MiB")
	}
	if !contains(compressions, c.Compression) {
		sec.Errorf("compression", "%q is not one of %s", c.Compression, strings.Join(compressions, ", "))
	}
	if !contains(partitioners, c.Partitioner) {
		sec.Errorf("partitioner", "%q is not one of %s", c.Partitioner, strings.Join(partitioners, ", "))
	}
	sec.WarnUnused("kafka")
	return c, sec.Err()
}

// parseProtocol reads security_protocol, applying the PLAINTEXT fallback.
func parseProtocol(sec *config.Section, username string) SecurityProtocol {
	if !sec.Has("security_protocol") {
		if username != "" {
			return SASLPlaintext // Rasa's default, which works with credentials
		}
		sec.Warnf("security_protocol", "not set and no sasl_username given: using PLAINTEXT (Rasa's default, SASL_PLAINTEXT, needs credentials); set security_protocol explicitly to silence this")
		return Plaintext
	}
	raw := sec.String("security_protocol", "")
	p := SecurityProtocol(strings.ToUpper(strings.TrimSpace(raw)))
	for _, ok := range securityProtocols {
		if p == ok {
			return p
		}
	}
	names := make([]string, len(securityProtocols))
	for i, p := range securityProtocols {
		names[i] = string(p)
	}
	sec.Errorf("security_protocol", "%q is not a valid security protocol (valid: %s)", raw, strings.Join(names, ", "))
	return Plaintext
}

func (c *Config) checkSASL(sec *config.Section) {
	if !c.SecurityProtocol.SASL() {
		for _, k := range []string{"sasl_username", "sasl_password", "sasl_oauth_token"} {
			if sec.Has(k) {
				sec.Warnf(k, "ignored with security_protocol %s (only SASL_PLAINTEXT and SASL_SSL authenticate)", c.SecurityProtocol)
			}
		}
		return
	}
	switch c.SASLMechanism {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if c.SASLUsername == "" || !sec.Has("sasl_password") {
			sec.Errorf("sasl_mechanism", "%s with security_protocol %s needs sasl_username and sasl_password", c.SASLMechanism, c.SecurityProtocol)
		}
	case MechanismOAuthBearer:
		if c.OAuthToken == "" {
			c.OAuthToken = c.SASLPassword
		}
		if c.OAuthToken == "" {
			sec.Errorf("sasl_mechanism", "OAUTHBEARER needs a token: set sasl_oauth_token (or sasl_password)")
		}
	case "GSSAPI":
		sec.Errorf("sasl_mechanism", "GSSAPI (Kerberos) is not supported by parley (supported: %s)", strings.Join(saslMechanisms, ", "))
	default:
		sec.Errorf("sasl_mechanism", "%q is not a supported SASL mechanism (supported: %s)", c.SASLMechanism, strings.Join(saslMechanisms, ", "))
	}
}

func (c *Config) checkTLS(sec *config.Section) {
	if !c.SecurityProtocol.TLS() {
		for _, k := range []string{"ssl_cafile", "ssl_certfile", "ssl_keyfile"} {
			if sec.Has(k) {
				sec.Warnf(k, "ignored with security_protocol %s (only SSL and SASL_SSL use TLS)", c.SecurityProtocol)
			}
		}
		return
	}
	if c.KeyFile != "" && c.CertFile == "" {
		sec.Errorf("ssl_keyfile", "given without ssl_certfile: a client key needs its certificate")
	}
}

// normalizeSeed checks one url entry and returns it as host:port.
func normalizeSeed(s string) (string, error) {
	seed := strings.TrimSpace(s)
	if i := strings.Index(seed, "://"); i >= 0 {
		seed = seed[i+3:] // librdkafka accepts "PLAINTEXT://host:port"
	}
	seed = strings.TrimSuffix(seed, "/")
	if seed == "" {
		return "", fmt.Errorf("%q is not a host:port", s)
	}
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		// No port: "localhost", or a bare IPv6 address.
		if strings.Count(seed, ":") > 1 && !strings.HasPrefix(seed, "[") {
			return net.JoinHostPort(seed, strconv.Itoa(DefaultPort)), nil
		}
		if strings.ContainsAny(seed, ":[]/ ") {
			return "", fmt.Errorf("%q is not a host:port", s)
		}
		return net.JoinHostPort(seed, strconv.Itoa(DefaultPort)), nil
	}
	n, err := strconv.Atoi(port)
	if host == "" || err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q is not a host:port (the port must be a number from 1 to 65535)", s)
	}
	return net.JoinHostPort(host, port), nil
}

// validTopic applies Kafka's topic name rules, so that a typo fails at
// config time instead of at the first publish.
func validTopic(t string) error {
	if t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	if len(t) > 249 {
		return fmt.Errorf("topic names are at most 249 characters, this one has %d", len(t))
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q is not a valid topic name (letters, digits, '.', '_' and '-' only)", t)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// withDefaults fills the zero fields of a Config built in code.
func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.SecurityProtocol == "" {
		c.SecurityProtocol = Plaintext
	}
	if c.SASLMechanism == "" {
		c.SASLMechanism = MechanismPlain
	}
	if c.SASLMechanism == MechanismOAuthBearer && c.OAuthToken == "" {
		c.OAuthToken = c.SASLPassword
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.MaxBufferedRecords <= 0 {
		c.MaxBufferedRecords = DefaultMaxBufferedRecords
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Compression == "" {
		c.Compression = CompressionNone
	}
	if c.Partitioner == "" {
		c.Partitioner = PartitionerConsistentRandom
	}
	if c.PositionsTopic == "" {
		c.PositionsTopic = DefaultPositionsTopic
	}
	if c.probeTimeout <= 0 {
		c.probeTimeout = openProbeTimeout
	}
	return c
}
