package kafka

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

// section parses an event_broker section (see brokertest.Section).
func section(t *testing.T, body string) *config.Section { return brokertest.Section(t, body) }

// defaults is what "url: localhost:9092" alone decodes to.
func defaults(edit func(*Config)) Config {
	c := Config{
		Seeds:              []string{"localhost:9092"},
		Topic:              "rasa_core_events",
		ClientID:           "parley",
		SecurityProtocol:   Plaintext,
		ProtocolDefaulted:  true,
		SASLMechanism:      "PLAIN",
		Partitions:         3,
		ReplicationFactor:  -1,
		Format:             event.FormatRasa,
		Linger:             0,
		MaxBufferedRecords: 10000,
		MaxMessageBytes:    1000012,
		Compression:        "none",
		Partitioner:        "consistent_random",
		ExactlyOnce:        true,
		PositionsTopic:     "parley_positions",
	}
	if edit != nil {
		edit(&c)
	}
	return c
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want Config
	}{
		{"defaults", "url: localhost:9092", defaults(nil)},
		{
			"Rasa docs: PLAINTEXT, host without port",
			"security_protocol: PLAINTEXT\ntopic: topic\nurl: localhost",
			defaults(func(c *Config) { c.Topic, c.ProtocolDefaulted = "topic", false }),
		},
		{
			"Rasa docs: SSL",
			"security_protocol: SSL\ntopic: topic\nurl: localhost\nssl_cafile: CARoot.pem\nssl_certfile: certificate.pem\nssl_keyfile: key.pem\nssl_check_hostname: True",
			defaults(func(c *Config) {
				c.Topic, c.SecurityProtocol, c.ProtocolDefaulted = "topic", SSL, false
				c.CAFile, c.CertFile, c.KeyFile, c.CheckHostname = "CARoot.pem", "certificate.pem", "key.pem", true
			}),
		},
		{
			"Rasa docs: SASL_PLAINTEXT",
			"security_protocol: SASL_PLAINTEXT\ntopic: topic\nurl: localhost\nsasl_username: username\nsasl_password: password\nsasl_mechanism: PLAIN",
			defaults(func(c *Config) {
				c.Topic, c.SecurityProtocol, c.ProtocolDefaulted = "topic", SASLPlaintext, false
				c.SASLUsername, c.SASLPassword = "username", "password"
			}),
		},
		{
			"no protocol but a username: Rasa's SASL_PLAINTEXT",
			"url: k:9092\nsasl_username: u\nsasl_password: p\nsasl_mechanism: scram-sha-512",
			defaults(func(c *Config) {
				c.Seeds, c.SecurityProtocol, c.ProtocolDefaulted = []string{"k:9092"}, SASLPlaintext, false
				c.SASLUsername, c.SASLPassword, c.SASLMechanism = "u", "p", MechanismScramSHA512
			}),
		},
		{
			"lower-case protocol, OAUTHBEARER token from sasl_password",
			"url: k\nsecurity_protocol: sasl_ssl\nsasl_mechanism: oauthbearer\nsasl_password: tok",
			defaults(func(c *Config) {
				c.Seeds, c.SecurityProtocol, c.ProtocolDefaulted = []string{"k:9092"}, SASLSSL, false
				c.SASLMechanism, c.SASLPassword, c.OAuthToken = MechanismOAuthBearer, "tok", "tok"
			}),
		},
		{
			"OAUTHBEARER with sasl_oauth_token",
			"url: k\nsecurity_protocol: SASL_SSL\nsasl_mechanism: OAUTHBEARER\nsasl_oauth_token: jwt",
			defaults(func(c *Config) {
				c.Seeds, c.SecurityProtocol, c.ProtocolDefaulted = []string{"k:9092"}, SASLSSL, false
				c.SASLMechanism, c.OAuthToken = MechanismOAuthBearer, "jwt"
			}),
		},
		{
			"url as a comma-separated string with a scheme and IPv6",
			"url: 'PLAINTEXT://a:9093, b ,[::1]:9094,::1'",
			defaults(func(c *Config) { c.Seeds = []string{"a:9093", "b:9092", "[::1]:9094", "[::1]:9092"} }),
		},
		{
			"url as a list",
			"url:\n  - a:1\n  - b:2",
			defaults(func(c *Config) { c.Seeds = []string{"a:1", "b:2"} }),
		},
		{
			"every parley key",
			"url: k:1\nclient_id: bot\npartition_by_sender: true\nconvert_intent_id_to_string: yes\ncreate_topic: true\npartitions: 12\nreplication_factor: 3\nformat: compact\nlinger: 20ms\nmax_buffered_records: 500\nmax_message_bytes: 4MiB\ncompression: ZSTD\npartitioner: murmur2\nsecurity_protocol: plaintext",
			defaults(func(c *Config) {
				c.Seeds, c.ClientID, c.PartitionBySender, c.ConvertIntentIDToString = []string{"k:1"}, "bot", true, true
				c.CreateTopic, c.Partitions, c.ReplicationFactor = true, 12, 3
				c.Format, c.Linger, c.MaxBufferedRecords, c.MaxMessageBytes = event.FormatCompact, 20*time.Millisecond, 500, 4<<20
				c.Compression, c.Partitioner, c.ProtocolDefaulted = "zstd", "murmur2", false
			}),
		},
		{
			"at least once",
			"url: k:1\nexactly_once: false\npositions_topic: my_positions",
			defaults(func(c *Config) { c.Seeds, c.ExactlyOnce, c.PositionsTopic = []string{"k:1"}, false, "my_positions" }),
		},
		{
			"linger in seconds",
			"url: k:1\nlinger: 0.002",
			defaults(func(c *Config) { c.Seeds, c.Linger = []string{"k:1"}, 2*time.Millisecond }),
		},
		{
			"Rasa's ignored keys",
			"url: k:1\nqueue_size: 100\nloglevel: DEBUG",
			defaults(func(c *Config) { c.Seeds = []string{"k:1"} }),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig(section(t, tc.yml))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseConfig:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string // each must appear in the error
	}{
		{"no url", "topic: t", []string{"endpoints.yml:2: event_broker.url: is required"}},
		{"empty url", "url: ''", []string{"endpoints.yml:2: event_broker.url: is required"}},
		{"bad port", "url: k:abc", []string{`endpoints.yml:2: event_broker.url: "k:abc" is not a host:port`}},
		{"port out of range", "url: a:1,b:70000", []string{`endpoints.yml:2: event_broker.url: "b:70000" is not a host:port`}},
		{"bad topic", "url: k\ntopic: 'my topic'", []string{`endpoints.yml:3: event_broker.topic: "my topic" is not a valid topic name`}},
		{"positions topic is the topic", "url: k\ntopic: t\npositions_topic: t", []string{`endpoints.yml:4: event_broker.positions_topic: must differ from topic ("t")`}},
		{"bad protocol", "url: k\nsecurity_protocol: TLS", []string{`endpoints.yml:3: event_broker.security_protocol: "TLS" is not a valid security protocol (valid: PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL)`}},
		{"GSSAPI", "url: k\nsecurity_protocol: SASL_PLAINTEXT\nsasl_mechanism: GSSAPI\nsasl_username: u\nsasl_password: p", []string{"endpoints.yml:4: event_broker.sasl_mechanism: GSSAPI (Kerberos) is not supported"}},
		{"unknown mechanism", "url: k\nsecurity_protocol: SASL_SSL\nsasl_mechanism: MD5\nsasl_username: u\nsasl_password: p", []string{`event_broker.sasl_mechanism: "MD5" is not a supported SASL mechanism (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)`}},
		{"SASL without credentials", "url: k\nsecurity_protocol: SASL_PLAINTEXT", []string{"event_broker.sasl_mechanism: PLAIN with security_protocol SASL_PLAINTEXT needs sasl_username and sasl_password"}},
		{"SCRAM without password", "url: k\nsecurity_protocol: SASL_SSL\nsasl_mechanism: SCRAM-SHA-256\nsasl_username: u", []string{"SCRAM-SHA-256 with security_protocol SASL_SSL needs sasl_username and sasl_password"}},
		{"OAUTHBEARER without token", "url: k\nsecurity_protocol: SASL_SSL\nsasl_mechanism: OAUTHBEARER", []string{"OAUTHBEARER needs a token"}},
		{"key without cert", "url: k\nsecurity_protocol: SSL\nssl_keyfile: k.pem", []string{"endpoints.yml:4: event_broker.ssl_keyfile: given without ssl_certfile"}},
		{"bad boolean", "url: k\npartition_by_sender: maybe", []string{`endpoints.yml:3: event_broker.partition_by_sender: "maybe" is not a boolean`}},
		{"bad format", "url: k\nformat: xml", []string{"endpoints.yml:3: event_broker.format: must be rasa or compact"}},
		{"bad compression", "url: k\ncompression: brotli", []string{`endpoints.yml:3: event_broker.compression: "brotli" is not one of none, gzip, snappy, lz4, zstd`}},
		{"bad partitioner", "url: k\npartitioner: random", []string{`event_broker.partitioner: "random" is not one of consistent_random, murmur2`}},
		{"bad linger", "url: k\nlinger: soon", []string{`endpoints.yml:3: event_broker.linger: "soon" is not a duration`}},
		{"linger too long", "url: k\nlinger: 2m", []string{"event_broker.linger: 2m0s is longer than the 1m maximum"}},
		{"no buffer", "url: k\nmax_buffered_records: 0", []string{"endpoints.yml:3: event_broker.max_buffered_records: must be at least 1"}},
		{"tiny messages", "url: k\nmax_message_bytes: 100", []string{"event_broker.max_message_bytes: must be between 1KiB and 100MiB"}},
		{"zero partitions", "url: k\ncreate_topic: true\npartitions: 0", []string{"endpoints.yml:4: event_broker.partitions: must be at least 1"}},
		{"zero replicas", "url: k\ncreate_topic: true\nreplication_factor: 0", []string{"event_broker.replication_factor: must be at least 1"}},
		{"several errors at once", "security_protocol: x\nformat: y", []string{"event_broker.url", "event_broker.security_protocol", "event_broker.format"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(section(t, tc.yml))
			if err == nil {
				t.Fatalf("ParseConfig succeeded, want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseConfigWarnings(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want string // "" for no warning at all
	}{
		{"PLAINTEXT fallback", "url: k", "endpoints.yml:2: event_broker.security_protocol: not set and no sasl_username given: using PLAINTEXT"},
		{"explicit PLAINTEXT", "url: k\nsecurity_protocol: PLAINTEXT", ""},
		{"SASL keys with PLAINTEXT", "url: k\nsecurity_protocol: PLAINTEXT\nsasl_password: p", "endpoints.yml:4: event_broker.sasl_password: ignored with security_protocol PLAINTEXT"},
		{"TLS keys with SASL_PLAINTEXT", "url: k\nsasl_username: u\nsasl_password: p\nssl_cafile: ca.pem", "event_broker.ssl_cafile: ignored with security_protocol SASL_PLAINTEXT"},
		{"queue_size", "url: k\nsecurity_protocol: PLAINTEXT\nqueue_size: 10", "event_broker.queue_size: accepted for Rasa compatibility and ignored"},
		{"loglevel", "url: k\nsecurity_protocol: PLAINTEXT\nloglevel: INFO", "event_broker.loglevel: accepted for Rasa compatibility and ignored"},
		{"partitions without create_topic", "url: k\nsecurity_protocol: PLAINTEXT\npartitions: 6", "event_broker.partitions: only used when parley creates the topic"},
		{"unknown key", "url: k\nsecurity_protocol: PLAINTEXT\ntopics: [a]", "endpoints.yml:4: event_broker.topics: unknown key for type kafka"},
		{"convert_intent_id_to_string is known", "url: k\nsecurity_protocol: PLAINTEXT\nconvert_intent_id_to_string: false", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sec := section(t, tc.yml)
			if _, err := ParseConfig(sec); err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			ws := sec.Warnings()
			if tc.want == "" {
				if len(ws) > 0 {
					t.Fatalf("unexpected warnings %q", ws)
				}
				return
			}
			found := false
			for _, w := range ws {
				found = found || strings.Contains(w, tc.want)
			}
			if !found {
				t.Errorf("warnings %q\ndo not contain %q", ws, tc.want)
			}
		})
	}
}

func TestRegisteredType(t *testing.T) {
	if _, err := broker.Configure(section(t, "type: kafka\nurl: localhost:9092")); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if _, err := broker.Configure(section(t, "type: KAFKA\nsecurity_protocol: nope")); err == nil {
		t.Fatal("Configure accepted a bad section")
	}
}

func TestSASLMechanismChosen(t *testing.T) {
	tests := []struct {
		c    Config
		want string // "" for no SASL
	}{
		{Config{SecurityProtocol: Plaintext, SASLMechanism: MechanismPlain, SASLUsername: "u"}, ""},
		{Config{SecurityProtocol: SSL, SASLMechanism: MechanismScramSHA256, SASLUsername: "u"}, ""},
		{Config{SecurityProtocol: SASLPlaintext, SASLMechanism: MechanismPlain}, "PLAIN"},
		{Config{SecurityProtocol: SASLSSL, SASLMechanism: MechanismScramSHA256}, "SCRAM-SHA-256"},
		{Config{SecurityProtocol: SASLSSL, SASLMechanism: MechanismScramSHA512}, "SCRAM-SHA-512"},
		{Config{SecurityProtocol: SASLSSL, SASLMechanism: MechanismOAuthBearer, OAuthToken: "t"}, "OAUTHBEARER"},
	}
	for _, tc := range tests {
		m := tc.c.saslMechanism()
		got := ""
		if m != nil {
			got = m.Name()
		}
		if got != tc.want {
			t.Errorf("%s/%s: mechanism %q, want %q", tc.c.SecurityProtocol, tc.c.SASLMechanism, got, tc.want)
		}
	}
}
