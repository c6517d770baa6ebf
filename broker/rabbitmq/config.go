package rabbitmq

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

// Defaults, as in Rasa's PikaEventBroker.
const (
	// DefaultExchange is Rasa's RABBITMQ_EXCHANGE.
	DefaultExchange = "rasa-exchange"
	// DefaultQueue is Rasa's DEFAULT_QUEUE_NAME, used when no queue is
	// configured.
	DefaultQueue = "rasa_core_events"
	// DefaultPort is the AMQP port.
	DefaultPort = 5672
	// DefaultTLSPort is the AMQPS port, the default when TLS is on.
	DefaultTLSPort = 5671
	// DefaultConnectionAttempts is Rasa's connection_attempts default.
	DefaultConnectionAttempts = 20
	// DefaultRetryDelay is Rasa's retry_delay_in_seconds default.
	DefaultRetryDelay = 5 * time.Second
	// DefaultConnectTimeout bounds the TCP connect and the TLS and AMQP
	// handshakes of one attempt.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultMaxMessageSize is RabbitMQ's default max_message_size.
	DefaultMaxMessageSize = 128 << 20
	// DefaultConnectionName is what RabbitMQ's management UI shows for
	// parley's connection.
	DefaultConnectionName = "parley"
)

// Environment variables read as Rasa reads them.
const (
	// EnvClientCert and EnvClientKey name the TLS client certificate and key
	// files; when both are set and url is a plain host name, TLS is on.
	EnvClientCert = "RABBITMQ_SSL_CLIENT_CERTIFICATE"
	EnvClientKey  = "RABBITMQ_SSL_CLIENT_KEY"
	// EnvCAFile names a CA certificate file trusted in addition to the
	// system roots. Rasa 3 deprecated it in favour of the URL's cacertfile,
	// and ignores it; parley honours both.
	EnvCAFile = "RABBITMQ_SSL_CA_FILE"
	// EnvKeyPassword is not supported (nor by Rasa 3): use an unencrypted key.
	EnvKeyPassword = "RABBITMQ_SSL_KEY_PASSWORD"
	// EnvRasaEnvironment becomes the messages' app_id when set.
	EnvRasaEnvironment = "RASA_ENVIRONMENT"
)

// Config is the pika (rabbitmq) broker's endpoints.yml section, resolved:
// the url/host key is split into its parts, so that the connection never
// depends on string concatenation as Rasa's does.
type Config struct {
	// Host is the RabbitMQ host (Rasa key url, or host; required). It is
	// either a host name, optionally with :port, or a full
	// amqp://user:password@host:port/vhost?query or amqps:// URL, whose parts
	// fill the fields below.
	Host string
	// Port is the port (Rasa key port, or the URL's port; default 5672,
	// or 5671 with TLS).
	Port int
	// Username and Password authenticate (Rasa keys username and password,
	// required unless the URL holds them; the URL's win).
	Username string
	Password string
	// VHost is the virtual host (parley key vhost, or the URL's path, as in
	// Rasa; default "/").
	VHost string

	// TLS is on for amqps:// URLs, and for a plain host when the client
	// certificate environment variables are both set (as in Rasa).
	TLS bool
	// CAFile is a PEM CA file trusted besides the system roots (URL query
	// cacertfile or cafile, else $RABBITMQ_SSL_CA_FILE).
	CAFile string
	// CertFile and KeyFile are the TLS client certificate and key
	// ($RABBITMQ_SSL_CLIENT_CERTIFICATE and $RABBITMQ_SSL_CLIENT_KEY, or
	// the URL query certfile and keyfile; a certfile without keyfile holds
	// both).
	CertFile string
	KeyFile  string
	// ServerName is the TLS server name checked (URL query
	// server_name_indication, default Host).
	ServerName string
	// InsecureSkipVerify skips the server certificate check (URL query
	// verify=verify_none). Only for tests.
	InsecureSkipVerify bool
	// ExternalAuth authenticates with the TLS client certificate (URL query
	// auth_mechanism=external) instead of username and password.
	ExternalAuth bool
	// Heartbeat is the AMQP heartbeat interval (URL query heartbeat, in
	// seconds; default 10s). Dead connections are noticed within about
	// three intervals.
	Heartbeat time.Duration
	// ConnectTimeout bounds one connection attempt (URL query
	// connection_timeout, in milliseconds, as in RabbitMQ's URI spec;
	// default 30s).
	ConnectTimeout time.Duration
	// ConnectionName is shown for the connection in RabbitMQ's management
	// UI and rabbitmqctl (parley key connection_name, default "parley").
	ConnectionName string

	// Exchange is the fanout exchange published to (Rasa key exchange_name,
	// default rasa-exchange).
	Exchange string
	// Queues are declared durable and bound to the exchange (Rasa key
	// queues, a list or one name, plus the legacy key queue that Rasa 3
	// ignores; default [rasa_core_events]).
	Queues []string

	// ConnectionAttempts is how often Open tries to connect (Rasa key
	// connection_attempts, default 20).
	ConnectionAttempts int
	// RetryDelay is the wait between Open's attempts and the cap of the
	// background reconnect backoff (Rasa key retry_delay_in_seconds,
	// default 5s).
	RetryDelay time.Duration
	// RaiseOnFailure makes Open fail when every attempt failed (Rasa key
	// raise_on_failure, default false: Open returns a broker that keeps
	// reconnecting in the background, and Publish waits for it).
	RaiseOnFailure bool
	// KeepUnpublished makes Publish wait for a reconnect while RabbitMQ is
	// unreachable, and republish events that were not confirmed when the
	// connection dropped (Rasa key should_keep_unpublished_messages,
	// default true). False fails Publish instead (what `rasa export` sets).
	KeepUnpublished bool

	// MaxMessageSize is the largest message body published (parley key
	// max_message_size, default 128MiB, RabbitMQ's max_message_size
	// default). A larger event fails Publish with broker.ErrPermanent
	// instead of having RabbitMQ close the channel on every retry.
	MaxMessageSize int64

	// AppID is every message's app_id (from $RASA_ENVIRONMENT; no app_id
	// when empty, as in Rasa).
	AppID string
	// Format is the JSON published (parley key format: rasa, default, or
	// compact).
	Format event.Format
}

// DefaultConfig returns the defaults of every key, for a broker built in
// code: set Host, Username and Password.
func DefaultConfig() Config {
	return Config{
		Port:               DefaultPort,
		VHost:              "/",
		ConnectTimeout:     DefaultConnectTimeout,
		ConnectionName:     DefaultConnectionName,
		Exchange:           DefaultExchange,
		Queues:             []string{DefaultQueue},
		ConnectionAttempts: DefaultConnectionAttempts,
		RetryDelay:         DefaultRetryDelay,
		KeepUnpublished:    true,
		MaxMessageSize:     DefaultMaxMessageSize,
	}
}

// Addr returns host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String describes the destination for logs and errors, without the
// password: amqps://user@host:5671/vhost.
func (c Config) String() string {
	scheme := "amqp"
	if c.TLS {
		scheme = "amqps"
	}
	u := url.URL{Scheme: scheme, Host: c.Addr(), Path: "/" + c.VHost}
	if c.VHost == "/" {
		u.Path = "/"
	} else {
		u.RawPath = "/" + url.PathEscape(c.VHost)
	}
	if c.Username != "" {
		u.User = url.User(c.Username)
	}
	return u.String()
}

// ParseConfig decodes and validates a pika/rabbitmq section, reading the
// environment variables Rasa reads (RABBITMQ_SSL_*, RASA_ENVIRONMENT).
func ParseConfig(sec *config.Section) (Config, error) {
	return parseConfig(sec, os.Getenv)
}

func parseConfig(sec *config.Section, getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	c.AppID = getenv(EnvRasaEnvironment)

	hostKey := "url"
	raw := strings.TrimSpace(sec.String("url", ""))
	if h := strings.TrimSpace(sec.String("host", "")); h != "" {
		if raw != "" && raw != h {
			sec.Errorf("host", "url and host are both given and differ: give one (the RabbitMQ host name or an amqp:// URL)")
		}
		if raw == "" {
			raw, hostKey = h, "host"
		}
	}
	portSet := sec.Has("port")
	port := sec.Int("port", 0)
	if portSet && (port < 1 || port > 65535) {
		sec.Errorf("port", "%d is not a TCP port (1-65535)", port)
		portSet = false
	}
	username := sec.String("username", "")
	password := sec.String("password", "")
	vhostSet := sec.Has("vhost")
	vhost := sec.String("vhost", "/")
	if vhost == "" {
		vhost = "/"
	}
	c.VHost = vhost

	var query url.Values
	userInURL, passInURL := false, false
	switch lower := strings.ToLower(raw); {
	case raw == "":
		sec.Errorf("url", "is required: the RabbitMQ host name (e.g. localhost) or an amqp://user:password@host:5672/vhost URL")
	case strings.HasPrefix(lower, "amqp://") || strings.HasPrefix(lower, "amqps://"):
		u, err := url.Parse(raw)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL, password included
			}
			sec.Errorf(hostKey, "is not a valid AMQP URL: %v (percent-encode reserved characters such as @ : / ? # in the username and password)", err)
			break
		}
		c.TLS = strings.EqualFold(u.Scheme, "amqps")
		c.Host = u.Hostname()
		if c.Host == "" {
			sec.Errorf(hostKey, "%s has no host name", config.RedactURL(raw))
		}
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				sec.Errorf(hostKey, "port %q is not a TCP port (1-65535)", p)
			} else {
				if portSet && port != n {
					sec.Errorf("port", "%d differs from port %d in %s: give the port once", port, n, hostKey)
				}
				port, portSet = n, true
			}
		}
		if u.User != nil {
			if name := u.User.Username(); name != "" {
				if username != "" && username != name {
					sec.Warnf("username", "differs from the username in %s, which is used", hostKey)
				}
				username, userInURL = name, true
			}
			if pw, ok := u.User.Password(); ok {
				if password != "" && password != pw {
					sec.Warnf("password", "differs from the password in %s, which is used", hostKey)
				}
				password, passInURL = pw, true
			}
		}
		if p := u.Path; p != "" && p != "/" {
			v := strings.TrimPrefix(p, "/")
			if vhostSet && v != vhost {
				sec.Errorf("vhost", "%q differs from the virtual host %q in %s: give it once", vhost, v, hostKey)
			}
			c.VHost = v
		}
		query = u.Query()
	case strings.Contains(raw, "://"):
		sec.Errorf(hostKey, "%s: the scheme must be amqp:// or amqps://", config.RedactURL(raw))
	default:
		c.Host = raw
		if h, p, err := net.SplitHostPort(raw); err == nil {
			n, perr := strconv.Atoi(p)
			if perr != nil || n < 1 || n > 65535 {
				sec.Errorf(hostKey, "port %q in %q is not a TCP port (1-65535)", p, raw)
			} else {
				if portSet && port != n {
					sec.Errorf("port", "%d differs from port %d in %s: give the port once", port, n, hostKey)
				}
				c.Host, port, portSet = h, n, true
			}
		}
		if strings.ContainsAny(c.Host, "/@?# ") {
			sec.Errorf(hostKey, "%q is not a host name (write a full amqp://user:password@host:port/vhost URL, or the host alone)", c.Host)
		}
	}

	c.parseQuery(sec, hostKey, query)
	c.applyTLSEnv(sec, hostKey, raw, getenv)

	switch {
	case portSet:
		c.Port = port
	case c.TLS:
		c.Port = DefaultTLSPort
	default:
		c.Port = DefaultPort
	}
	c.Username, c.Password = username, password
	if !c.ExternalAuth {
		if username == "" && !userInURL {
			sec.Errorf("username", "is required (or give it in the url: amqp://user:password@host)")
		}
		if password == "" && !passInURL {
			sec.Errorf("password", "is required (or give it in the url: amqp://user:password@host)")
		}
	}

	c.Exchange = sec.String("exchange_name", DefaultExchange)
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	checkName(sec, "exchange_name", "exchange", c.Exchange)
	c.Queues = parseQueues(sec)

	c.ConnectionAttempts = sec.Int("connection_attempts", DefaultConnectionAttempts)
	if c.ConnectionAttempts < 1 {
		sec.Errorf("connection_attempts", "must be at least 1")
	}
	c.RetryDelay = sec.Duration("retry_delay_in_seconds", DefaultRetryDelay)
	c.RaiseOnFailure = sec.Bool("raise_on_failure", false)
	c.KeepUnpublished = sec.Bool("should_keep_unpublished_messages", true)
	c.ConnectionName = sec.String("connection_name", DefaultConnectionName)
	c.MaxMessageSize = sec.Size("max_message_size", DefaultMaxMessageSize)
	if c.MaxMessageSize < 1 || c.MaxMessageSize > 512<<20 {
		sec.Errorf("max_message_size", "must be between 1 byte and 512MiB, RabbitMQ's limit")
	}

	if f, ok := event.ParseFormat(sec.String("format", "rasa")); ok {
		c.Format = f
	} else {
		sec.Errorf("format", "must be rasa or compact")
	}
	typ := sec.Type()
	if typ == "" {
		typ = "pika"
	}
	sec.WarnUnused(typ)
	return c, sec.Err()
}

// parseQueues reads queues and the legacy queue key, merged in order
// without repeats; none gives Rasa's default.
func parseQueues(sec *config.Section) []string {
	var qs []string
	for _, key := range []string{"queues", "queue"} {
		for _, q := range sec.StringList(key, nil) {
			q = strings.TrimSpace(q)
			if !checkName(sec, key, "queue", q) {
				continue
			}
			if !slices.Contains(qs, q) {
				qs = append(qs, q)
			}
		}
	}
	if sec.Has("queue") {
		sec.Warnf("queue", "is the key of Rasa before 1.8.2 (Rasa 3 ignores it); parley publishes to it too, but prefer queues: [...]")
	}
	if len(qs) == 0 {
		return []string{DefaultQueue}
	}
	return qs
}

// checkName rejects names RabbitMQ refuses to declare.
func checkName(sec *config.Section, key, what, name string) bool {
	switch {
	case name == "":
		sec.Errorf(key, "an empty %s name is not allowed", what)
	case len(name) > 255:
		sec.Errorf(key, "%s name %.20q... is longer than RabbitMQ's 255 bytes", what, name)
	case strings.HasPrefix(name, "amq."):
		sec.Errorf(key, "%s name %q: the amq. prefix is reserved by RabbitMQ", what, name)
	default:
		return true
	}
	return false
}

// parseQuery applies the query parameters of RabbitMQ's URI spec
// (https://www.rabbitmq.com/docs/uri-query-parameters) that a client uses.
func (c *Config) parseQuery(sec *config.Section, key string, q url.Values) {
	for name, vals := range q {
		v := vals[len(vals)-1]
		switch name {
		case "cacertfile", "cafile": // cafile: what aiormq, under Rasa, reads
			if c.CAFile != "" && c.CAFile != v {
				sec.Errorf(key, "cacertfile and cafile name different files")
			}
			c.CAFile = v
		case "certfile":
			c.CertFile = v
		case "keyfile":
			c.KeyFile = v
		case "server_name_indication":
			if v != "disable" {
				c.ServerName = v
			}
		case "verify":
			switch v {
			case "verify_peer":
			case "verify_none":
				c.InsecureSkipVerify = true
				sec.Warnf(key, "verify=verify_none: the server certificate is not checked")
			default:
				sec.Errorf(key, "verify=%s: want verify_peer or verify_none", v)
			}
		case "auth_mechanism":
			switch strings.ToLower(v) {
			case "plain", "amqplain":
			case "external":
				c.ExternalAuth = true
			default:
				sec.Errorf(key, "auth_mechanism=%s: want plain, amqplain or external", v)
			}
		case "heartbeat":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				sec.Errorf(key, "heartbeat=%s is not a number of seconds", v)
			}
			c.Heartbeat = time.Duration(n) * time.Second
		case "connection_timeout":
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil || n == 0 {
				sec.Errorf(key, "connection_timeout=%s is not a number of milliseconds", v)
			} else {
				c.ConnectTimeout = time.Duration(n) * time.Millisecond
			}
		case "fail_if_no_peer_cert", "channel_max", "frame_max":
			// Server-side, or negotiated with the server: nothing to do.
		default:
			sec.Warnf(key, "URL query parameter %q is not known, ignored", name)
		}
	}
	if c.CertFile != "" && c.KeyFile == "" {
		c.KeyFile = c.CertFile // one PEM with both, as Python's ssl allows
	}
	if c.KeyFile != "" && c.CertFile == "" {
		sec.Errorf(key, "keyfile without certfile")
	}
	if !c.TLS && (c.CAFile != "" || c.CertFile != "") {
		sec.Warnf(key, "TLS options are ignored for an amqp:// URL; use amqps:// for TLS")
	}
}

// applyTLSEnv reads Rasa's TLS environment variables.
func (c *Config) applyTLSEnv(sec *config.Section, key, raw string, getenv func(string) string) {
	cert, certKey := getenv(EnvClientCert), getenv(EnvClientKey)
	isURL := strings.Contains(raw, "://")
	switch {
	case cert != "" && certKey != "":
		switch {
		case !isURL:
			// Rasa: a plain host with both variables set connects with TLS.
			c.TLS = true
		case !c.TLS:
			sec.Warnf(key, "$%s and $%s are ignored: the url is amqp://, not amqps://", EnvClientCert, EnvClientKey)
			return
		}
		if c.CertFile != "" {
			sec.Warnf(key, "certfile in the url is used, not $%s", EnvClientCert)
		} else {
			c.CertFile, c.KeyFile = cert, certKey
		}
	case cert != "" || certKey != "":
		sec.Warnf(key, "only one of $%s and $%s is set, so no client certificate is used (as in Rasa)", EnvClientCert, EnvClientKey)
	}
	if ca := getenv(EnvCAFile); ca != "" && c.CAFile == "" && c.TLS {
		c.CAFile = ca
	}
	if c.TLS && getenv(EnvKeyPassword) != "" {
		sec.Warnf(key, "$%s is not supported (nor by Rasa 3): use an unencrypted key file", EnvKeyPassword)
	}
}

// validate checks a Config built in code.
func (c Config) validate() error {
	switch {
	case c.Host == "":
		return fmt.Errorf("rabbitmq: no host")
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("rabbitmq: port %d is not a TCP port", c.Port)
	case c.Exchange == "":
		return fmt.Errorf("rabbitmq: no exchange")
	case c.ConnectionAttempts < 1:
		return fmt.Errorf("rabbitmq: connection attempts must be at least 1")
	}
	return nil
}
