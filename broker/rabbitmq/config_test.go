package rabbitmq

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

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// base is what a minimal valid section resolves to.
func base(mod func(*Config)) Config {
	c := DefaultConfig()
	c.Host, c.Username, c.Password = "localhost", "user", "pw"
	if mod != nil {
		mod(&c)
	}
	return c
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		env  func(string) string
		want Config
	}{
		{
			name: "Rasa docs example",
			yml: `type: pika
url: localhost
username: username
password: password
queues:
- queue-1
exchange_name: exchange`,
			want: base(func(c *Config) {
				c.Username, c.Password = "username", "password"
				c.Queues, c.Exchange = []string{"queue-1"}, "exchange"
			}),
		},
		{
			name: "defaults",
			yml:  "url: localhost\nusername: user\npassword: pw",
			want: base(nil),
		},
		{
			name: "every Rasa key",
			yml: `type: pika
url: rabbit.internal
port: "5673"
username: user
password: pw
queues: [a, b]
exchange_name: events
connection_attempts: 3
retry_delay_in_seconds: 0.5
raise_on_failure: true
should_keep_unpublished_messages: false`,
			want: base(func(c *Config) {
				c.Host, c.Port = "rabbit.internal", 5673
				c.Queues, c.Exchange = []string{"a", "b"}, "events"
				c.ConnectionAttempts, c.RetryDelay = 3, 500*time.Millisecond
				c.RaiseOnFailure, c.KeepUnpublished = true, false
			}),
		},
		{
			name: "host key instead of url, with a port",
			yml:  "host: rabbit:5673\nusername: user\npassword: pw",
			want: base(func(c *Config) { c.Host, c.Port = "rabbit", 5673 }),
		},
		{
			name: "IPv6 host with port",
			yml:  "url: '[::1]:5673'\nusername: user\npassword: pw",
			want: base(func(c *Config) { c.Host, c.Port = "::1", 5673 }),
		},
		{
			name: "amqp URL without port or credentials",
			yml:  "url: amqp://localhost\nusername: user\npassword: pw",
			want: base(nil),
		},
		{
			name: "amqp URL with port and vhost (Rasa: amqp://u:p@rabbit:5672/vhost)",
			yml:  "url: amqp://rabbit:5672/vhost\nusername: user\npassword: pw",
			want: base(func(c *Config) { c.Host, c.VHost = "rabbit", "vhost" }),
		},
		{
			name: "URL port other than 5672 is not appended twice (Rasa: amqp://u:p@rabbit:5673:5672)",
			yml:  "url: amqp://rabbit:5673\nusername: user\npassword: pw",
			want: base(func(c *Config) { c.Host, c.Port = "rabbit", 5673 }),
		},
		{
			name: "port key equal to the URL's",
			yml:  "url: amqp://rabbit:5673\nport: 5673\nusername: user\npassword: pw",
			want: base(func(c *Config) { c.Host, c.Port = "rabbit", 5673 }),
		},
		{
			name: "credentials in the URL, no username or password keys",
			yml:  "url: amqp://alice:s3cret@rabbit/",
			want: base(func(c *Config) { c.Host, c.Username, c.Password = "rabbit", "alice", "s3cret" }),
		},
		{
			name: "credentials in the URL and the same in keys, as Rasa requires",
			yml:  "url: amqp://user:pw@localhost:5672\nusername: user\npassword: pw",
			want: base(nil),
		},
		{
			name: "percent-encoded credentials and the default vhost escaped",
			yml:  "url: amqp://us%40er:p%3Aw%2Fd%23@rabbit/%2F",
			want: base(func(c *Config) { c.Host, c.Username, c.Password = "rabbit", "us@er", "p:w/d#" }),
		},
		{
			name: "credentials with URL-reserved characters in keys need no escaping",
			yml:  "url: localhost\nusername: 'us@er'\npassword: 'p:w/d#?%'",
			want: base(func(c *Config) { c.Username, c.Password = "us@er", "p:w/d#?%" }),
		},
		{
			name: "password containing the port's digits (Rasa then drops the port)",
			yml:  "url: amqp://rabbit\nusername: user\npassword: pw5672",
			want: base(func(c *Config) { c.Host, c.Password = "rabbit", "pw5672" }),
		},
		{
			name: "vhost key",
			yml:  "url: localhost\nvhost: staging\nusername: user\npassword: pw",
			want: base(func(c *Config) { c.VHost = "staging" }),
		},
		{
			name: "amqps URL: port 5671, CA from cacertfile (Rasa's advice)",
			yml:  "url: amqps://user:pw@rabbit/vh?cacertfile=/etc/ca.pem",
			want: base(func(c *Config) {
				c.Host, c.Port, c.VHost, c.TLS, c.CAFile = "rabbit", 5671, "vh", true, "/etc/ca.pem"
			}),
		},
		{
			name: "amqps URL: cafile (what aiormq reads), client cert in one PEM, SNI, heartbeat, timeout",
			yml:  "url: amqps://user:pw@10.0.0.5:5671/?cafile=/ca.pem&certfile=/both.pem&server_name_indication=rabbit.local&heartbeat=30&connection_timeout=2500",
			want: base(func(c *Config) {
				c.Host, c.Port, c.TLS, c.CAFile = "10.0.0.5", 5671, true, "/ca.pem"
				c.CertFile, c.KeyFile, c.ServerName = "/both.pem", "/both.pem", "rabbit.local"
				c.Heartbeat, c.ConnectTimeout = 30*time.Second, 2500*time.Millisecond
			}),
		},
		{
			name: "amqps URL with client certificate from Rasa's environment variables",
			yml:  "url: amqps://user:pw@rabbit",
			env:  env(EnvClientCert, "/c.pem", EnvClientKey, "/c.key", EnvCAFile, "/ca.pem"),
			want: base(func(c *Config) {
				c.Host, c.Port, c.TLS = "rabbit", 5671, true
				c.CertFile, c.KeyFile, c.CAFile = "/c.pem", "/c.key", "/ca.pem"
			}),
		},
		{
			name: "plain host with both certificate variables: TLS on 5671",
			yml:  "url: rabbit\nusername: user\npassword: pw",
			env:  env(EnvClientCert, "/c.pem", EnvClientKey, "/c.key"),
			want: base(func(c *Config) {
				c.Host, c.Port, c.TLS, c.CertFile, c.KeyFile = "rabbit", 5671, true, "/c.pem", "/c.key"
			}),
		},
		{
			name: "plain host with certificate variables and an explicit port",
			yml:  "url: rabbit\nport: 5672\nusername: user\npassword: pw",
			env:  env(EnvClientCert, "/c.pem", EnvClientKey, "/c.key"),
			want: base(func(c *Config) {
				c.Host, c.Port, c.TLS, c.CertFile, c.KeyFile = "rabbit", 5672, true, "/c.pem", "/c.key"
			}),
		},
		{
			name: "only one certificate variable: no TLS, as Rasa",
			yml:  "url: localhost\nusername: user\npassword: pw",
			env:  env(EnvClientCert, "/c.pem", EnvCAFile, "/ca.pem"),
			want: base(nil),
		},
		{
			name: "amqp URL ignores the certificate variables",
			yml:  "url: amqp://localhost\nusername: user\npassword: pw",
			env:  env(EnvClientCert, "/c.pem", EnvClientKey, "/c.key"),
			want: base(nil),
		},
		{
			name: "EXTERNAL authentication needs no password",
			yml:  "url: amqps://rabbit?auth_mechanism=external&cacertfile=/ca.pem",
			env:  env(EnvClientCert, "/c.pem", EnvClientKey, "/c.key"),
			want: base(func(c *Config) {
				c.Host, c.Port, c.TLS, c.CAFile, c.ExternalAuth = "rabbit", 5671, true, "/ca.pem", true
				c.Username, c.Password, c.CertFile, c.KeyFile = "", "", "/c.pem", "/c.key"
			}),
		},
		{
			name: "RASA_ENVIRONMENT becomes app_id",
			yml:  "url: localhost\nusername: user\npassword: pw",
			env:  env(EnvRasaEnvironment, "production"),
			want: base(func(c *Config) { c.AppID = "production" }),
		},
		{
			name: "queues as one string",
			yml:  "url: localhost\nusername: user\npassword: pw\nqueues: events",
			want: base(func(c *Config) { c.Queues = []string{"events"} }),
		},
		{
			name: "empty queues list takes Rasa's default",
			yml:  "url: localhost\nusername: user\npassword: pw\nqueues: []",
			want: base(nil),
		},
		{
			name: "legacy queue key alone",
			yml:  "url: localhost\nusername: user\npassword: pw\nqueue: old_events",
			want: base(func(c *Config) { c.Queues = []string{"old_events"} }),
		},
		{
			name: "legacy queue key merged with queues, without repeats",
			yml:  "url: localhost\nusername: user\npassword: pw\nqueues: [a, b]\nqueue: a",
			want: base(func(c *Config) { c.Queues = []string{"a", "b"} }),
		},
		{
			name: "parley keys",
			yml:  "url: localhost\nusername: user\npassword: pw\nformat: compact\nconnection_name: bot-1\nmax_message_size: 16MiB",
			want: base(func(c *Config) {
				c.Format, c.ConnectionName, c.MaxMessageSize = event.FormatCompact, "bot-1", 16<<20
			}),
		},
		{
			name: "null values take the defaults",
			yml:  "url: localhost\nusername: user\npassword: pw\nqueues:\nexchange_name:\nport:",
			want: base(nil),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := tc.env
			if getenv == nil {
				getenv = env()
			}
			got, err := parseConfig(section(t, tc.yml), getenv)
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		env  func(string) string
		want []string // each must appear in the error
	}{
		{"no url", "username: user\npassword: pw", nil, []string{"endpoints.yml:2: event_broker.url: is required"}},
		{"no password", "url: localhost\nusername: user", nil, []string{"endpoints.yml:2: event_broker.password: is required"}},
		{"no username", "url: amqp://:pw@localhost\npassword: pw", nil, []string{"event_broker.username: is required"}},
		{"bad port", "url: localhost\nport: abc\nusername: user\npassword: pw", nil, []string{`endpoints.yml:3: event_broker.port: "abc" is not a number`}},
		{"port out of range", "url: localhost\nport: 70000\nusername: user\npassword: pw", nil, []string{"endpoints.yml:3: event_broker.port: 70000 is not a TCP port"}},
		{"port differs from the URL's", "url: amqp://rabbit:5673\nport: 5672\nusername: user\npassword: pw", nil, []string{"endpoints.yml:3: event_broker.port: 5672 differs from port 5673 in url"}},
		{"bad port in host", "url: rabbit:http\nusername: user\npassword: pw", nil, []string{`endpoints.yml:2: event_broker.url: port "http"`}},
		{"wrong scheme", "url: http://rabbit\nusername: user\npassword: pw", nil, []string{"endpoints.yml:2: event_broker.url: http://rabbit: the scheme must be amqp:// or amqps://"}},
		{"unparsable URL keeps the password out", "url: 'amqp://user:se#cr et@rabbit:5672/'", nil, []string{"event_broker.url: is not a valid AMQP URL"}},
		{"URL without host", "url: amqp:///vhost\nusername: user\npassword: pw", nil, []string{"has no host name"}},
		{"url and host differ", "url: a\nhost: b\nusername: user\npassword: pw", nil, []string{"endpoints.yml:3: event_broker.host: url and host are both given and differ"}},
		{"vhost differs from the URL's", "url: amqp://rabbit/one\nvhost: two\nusername: user\npassword: pw", nil, []string{`endpoints.yml:3: event_broker.vhost: "two" differs from the virtual host "one"`}},
		{"host with a path", "url: rabbit/vhost\nusername: user\npassword: pw", nil, []string{"is not a host name"}},
		{"bad format", "url: localhost\nusername: user\npassword: pw\nformat: xml", nil, []string{"endpoints.yml:5: event_broker.format: must be rasa or compact"}},
		{"no connection attempts", "url: localhost\nusername: user\npassword: pw\nconnection_attempts: 0", nil, []string{"endpoints.yml:5: event_broker.connection_attempts: must be at least 1"}},
		{"negative retry delay", "url: localhost\nusername: user\npassword: pw\nretry_delay_in_seconds: -1", nil, []string{"event_broker.retry_delay_in_seconds"}},
		{"bad boolean", "url: localhost\nusername: user\npassword: pw\nraise_on_failure: maybe", nil, []string{`endpoints.yml:5: event_broker.raise_on_failure: "maybe" is not a boolean`}},
		{"reserved queue name", "url: localhost\nusername: user\npassword: pw\nqueues: [ok, amq.events]", nil, []string{`endpoints.yml:5: event_broker.queues: queue name "amq.events"`}},
		{"reserved exchange name", "url: localhost\nusername: user\npassword: pw\nexchange_name: amq.fanout", nil, []string{`event_broker.exchange_name: exchange name "amq.fanout"`}},
		{"queues as a mapping", "url: localhost\nusername: user\npassword: pw\nqueues: {a: 1}", nil, []string{"event_broker.queues: must be a list"}},
		{"bad auth mechanism", "url: amqp://u:p@rabbit?auth_mechanism=kerberos", nil, []string{"auth_mechanism=kerberos"}},
		{"keyfile without certfile", "url: amqps://u:p@rabbit?keyfile=/k.pem", nil, []string{"keyfile without certfile"}},
		{"several errors at once", "url: localhost\nport: x\nformat: y", nil, []string{"event_broker.port", "event_broker.format", "event_broker.password", "event_broker.username"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := tc.env
			if getenv == nil {
				getenv = env()
			}
			_, err := parseConfig(section(t, tc.yml), getenv)
			if err == nil {
				t.Fatalf("parseConfig succeeded, want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "se#cr") {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

func TestParseConfigWarnings(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		env  func(string) string
		want string
	}{
		{"unknown key", "url: localhost\nusername: user\npassword: pw\nqueue_name: x", nil, `event_broker.queue_name: unknown key for type pika`},
		{"legacy queue key", "url: localhost\nusername: user\npassword: pw\nqueue: x", nil, "event_broker.queue: is the key of Rasa before 1.8.2"},
		{"one certificate variable", "url: localhost\nusername: user\npassword: pw", env(EnvClientKey, "/k"), "only one of"},
		{"certificate variables with amqp://", "url: amqp://u:p@localhost", env(EnvClientCert, "/c", EnvClientKey, "/k"), "the url is amqp://, not amqps://"},
		{"key password", "url: amqps://u:p@localhost", env(EnvKeyPassword, "x"), "RABBITMQ_SSL_KEY_PASSWORD is not supported"},
		{"username differs from the URL's", "url: amqp://alice:pw@localhost\nusername: bob\npassword: pw", nil, "event_broker.username: differs from the username in url, which is used"},
		{"unknown URL parameter", "url: amqp://u:p@localhost?foo=1", nil, `URL query parameter "foo" is not known`},
		{"TLS parameters on amqp://", "url: amqp://u:p@localhost?cacertfile=/ca.pem", nil, "TLS options are ignored for an amqp:// URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := tc.env
			if getenv == nil {
				getenv = env()
			}
			sec := section(t, tc.yml)
			if _, err := parseConfig(sec, getenv); err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			found := false
			for _, w := range sec.Warnings() {
				found = found || strings.Contains(w, tc.want)
			}
			if !found {
				t.Errorf("warnings %q\ndo not contain %q", sec.Warnings(), tc.want)
			}
		})
	}
}

func TestConfigStringHidesPassword(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{base(nil), "amqp://user@localhost:5672/"},
		{base(func(c *Config) { c.TLS, c.Port, c.VHost = true, 5671, "vh" }), "amqps://user@localhost:5671/vh"},
		{base(func(c *Config) { c.VHost = "a/b" }), "amqp://user@localhost:5672/a%2Fb"},
		{base(func(c *Config) { c.Host = "::1" }), "amqp://user@[::1]:5672/"},
	}
	for _, tc := range tests {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if strings.Contains(tc.c.String(), tc.c.Password) {
			t.Errorf("String() %q shows the password", tc.c.String())
		}
	}
}

func TestRegisteredTypes(t *testing.T) {
	for _, typ := range []string{"pika", "rabbitmq", ""} {
		t.Run("type="+typ, func(t *testing.T) {
			yml := "url: localhost\nusername: user\npassword: pw"
			if typ != "" {
				yml = "type: " + typ + "\n" + yml
			}
			if _, err := broker.Configure(section(t, yml)); err != nil {
				t.Fatalf("Configure: %v", err)
			}
		})
	}
	if _, err := broker.Configure(section(t, "type: pika\nurl: localhost")); err == nil {
		t.Fatal("Configure accepted a section without credentials")
	}
}
