package consumer

import (
	"strings"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer/auth"
	"github.com/parleyhq/parley/internal/sqldb"
)

// Config is endpoints.yml's consumer_api section, a parley extension:
//
//	consumer_api:
//	  source: sql                # kafka or sql; default: the first event_broker's type
//	  topic: rasa_core_events
//	  clients:
//	    - client_id: analytics
//	      client_secret_hash: pbkdf2-sha256$600000$...   # parley consume hash-secret
//	      topics: [rasa_core_events]
//	      groups: [analytics, "analytics-*"]   # optional: the groups reserved for the client
//	  signing_key: ${PARLEY_TOKEN_KEY}
//	  token_ttl: 15m
//	  consumer_idle_timeout: 5m
//	  rate_limit: 10
type Config struct {
	// Source is what the API reads: "kafka" or "sql" (key source). Empty
	// means follow the first event_broker's type; see SourceFor.
	Source string
	// Topic is the default topic: the one GET /partitions describes when
	// no token or ?topic= names another, and the SQL events table's topic
	// name (key topic). Empty (the default) means the source's: the Kafka
	// broker's topic, or rasa_core_events (Rasa's Kafka topic) for the SQL
	// table.
	Topic string
	// Table is the SQL source's events table (key table, default: the SQL
	// event broker's table, events).
	Table string
	// Clients may request tokens (key clients). With none, the API is
	// open to loopback requests only.
	Clients []auth.Client
	// SigningKey signs tokens (key signing_key, at least 32 bytes). When
	// empty a key is generated at start-up and tokens do not survive a
	// restart.
	SigningKey []byte
	// TokenTTL is how long a token is valid (key token_ttl, default 15m,
	// as Mix).
	TokenTTL time.Duration
	// IdleTimeout closes a consumer instance that received no request
	// for this long (key consumer_idle_timeout, default 5m, as Confluent's
	// consumer.instance.timeout.ms).
	IdleTimeout time.Duration
	// RateLimit is the sustained reads (records calls and SSE stream
	// opens) per second allowed per consumer instance, and requests per
	// second per address to /oauth2/token and, separately, /openapi.json
	// (key rate_limit, default 10, as Mix); 0 disables limiting. Other
	// calls, and calls naming no live instance, are not counted.
	RateLimit float64
	// RateBurst is how many of those may come at once (key rate_burst,
	// default: RateLimit rounded up).
	RateBurst int
	// MaxRecords caps the records returned by one records request (key
	// max_records, default 500, Kafka's max.poll.records).
	MaxRecords int
	// MaxBytes caps the key and value bytes returned by one records
	// request; a smaller ?max_bytes= lowers it (key max_bytes, default
	// 64MiB, Confluent's consumer.request.max.bytes).
	MaxBytes int64
	// RequestTimeout is how long a records request waits for records when
	// neither ?timeout= nor the consumer's consumer.request.timeout.ms say
	// (key request_timeout, default 1s, as Confluent).
	RequestTimeout time.Duration
	// MaxWait caps ?timeout= (key max_wait, default 5m).
	MaxWait time.Duration
	// AutoCommitInterval is how often delivered offsets are committed for
	// consumers with auto.commit.enable (key auto_commit_interval, default
	// 5s, Kafka's auto.commit.interval.ms).
	AutoCommitInterval time.Duration
	// Heartbeat is the interval of SSE keep-alive comments (key
	// sse_heartbeat, default 15s).
	Heartbeat time.Duration
	// PollInterval is how often the SQL source looks for rows written by
	// other processes while reads wait (key poll_interval, default
	// 500ms); rows written through parley wake reads at once.
	PollInterval time.Duration

	// Warnings are the section's warnings (unknown keys), for start-up
	// logs and `parley config check`.
	Warnings []string
}

// Defaults.
const (
	DefaultTopic              = "rasa_core_events" // the SQL source's topic name, Rasa's Kafka topic
	DefaultTokenTTL           = 15 * time.Minute
	DefaultIdleTimeout        = 5 * time.Minute
	DefaultRateLimit          = 10
	DefaultMaxRecords         = 500
	DefaultMaxBytes           = 64 << 20
	DefaultRequestTimeout     = time.Second
	DefaultMaxWait            = 5 * time.Minute
	DefaultAutoCommitInterval = 5 * time.Second
	DefaultHeartbeat          = 15 * time.Second
	DefaultPollInterval       = 500 * time.Millisecond
)

// DefaultConfig returns the configuration used when endpoints.yml has no
// consumer_api section.
func DefaultConfig() Config {
	return Config{
		TokenTTL:           DefaultTokenTTL,
		IdleTimeout:        DefaultIdleTimeout,
		RateLimit:          DefaultRateLimit,
		RateBurst:          DefaultRateLimit,
		MaxRecords:         DefaultMaxRecords,
		MaxBytes:           DefaultMaxBytes,
		RequestTimeout:     DefaultRequestTimeout,
		MaxWait:            DefaultMaxWait,
		AutoCommitInterval: DefaultAutoCommitInterval,
		Heartbeat:          DefaultHeartbeat,
		PollInterval:       DefaultPollInterval,
	}
}

// ParseConfig decodes and validates the consumer_api section; sec may be
// nil (section absent), which gives DefaultConfig. It does no I/O.
func ParseConfig(sec *config.Section) (Config, error) {
	c := DefaultConfig()
	if sec == nil {
		return c, nil
	}
	c.Source = strings.ToLower(strings.TrimSpace(sec.String("source", "")))
	switch c.Source {
	case "", "kafka", "sql":
	default:
		sec.Errorf("source", "%q is not a consumer API source (want kafka or sql)", c.Source)
	}
	c.Topic = sec.String("topic", "")
	if sec.Has("topic") && c.Topic == "" {
		sec.Errorf("topic", "must not be empty")
	}
	c.Table = sec.String("table", "")
	if c.Table != "" && !sqldb.ValidTable(c.Table) {
		sec.Errorf("table", "%q is not a plain SQL table name", c.Table)
	}
	if key := sec.String("signing_key", ""); key != "" {
		if len(key) < 32 {
			sec.Errorf("signing_key", "must be at least 32 bytes (it is %d); generate one with `openssl rand -base64 32`", len(key))
		}
		c.SigningKey = []byte(key)
	}
	c.TokenTTL = positiveDuration(sec, "token_ttl", DefaultTokenTTL)
	c.IdleTimeout = positiveDuration(sec, "consumer_idle_timeout", DefaultIdleTimeout)
	c.RateLimit = sec.Float("rate_limit", DefaultRateLimit)
	if c.RateLimit < 0 {
		sec.Errorf("rate_limit", "must not be negative (0 disables rate limiting)")
	}
	burst := int(c.RateLimit)
	if float64(burst) < c.RateLimit {
		burst++
	}
	c.RateBurst = sec.Int("rate_burst", max(burst, 1))
	if c.RateBurst < 1 {
		sec.Errorf("rate_burst", "must be at least 1")
	}
	c.MaxRecords = sec.Int("max_records", DefaultMaxRecords)
	if c.MaxRecords < 1 {
		sec.Errorf("max_records", "must be at least 1")
	}
	c.MaxBytes = sec.Size("max_bytes", DefaultMaxBytes)
	if c.MaxBytes < 1 {
		sec.Errorf("max_bytes", "must be at least 1 byte")
	}
	c.RequestTimeout = sec.Duration("request_timeout", DefaultRequestTimeout)
	c.MaxWait = positiveDuration(sec, "max_wait", DefaultMaxWait)
	c.AutoCommitInterval = positiveDuration(sec, "auto_commit_interval", DefaultAutoCommitInterval)
	c.Heartbeat = positiveDuration(sec, "sse_heartbeat", DefaultHeartbeat)
	c.PollInterval = positiveDuration(sec, "poll_interval", DefaultPollInterval)

	var errs config.Errors
	seen := map[string]bool{}
	for _, cs := range sec.SubList("clients") {
		cl := auth.Client{
			ID:         cs.String("client_id", ""),
			SecretHash: cs.String("client_secret_hash", ""),
			Topics:     cs.StringList("topics", nil),
			Groups:     cs.StringList("groups", nil),
		}
		switch {
		case cl.ID == "":
			cs.Errorf("client_id", "is required")
		case seen[cl.ID]:
			cs.Errorf("client_id", "%q is listed twice", cl.ID)
		}
		seen[cl.ID] = true
		if cs.Has("client_secret") {
			cs.Errorf("client_secret", "secrets are not stored in clear: put the output of `parley consume hash-secret` in client_secret_hash")
		}
		if cl.SecretHash == "" {
			cs.Errorf("client_secret_hash", "is required (make one with `parley consume hash-secret`)")
		} else if err := auth.CheckHash(cl.SecretHash); err != nil {
			cs.Errorf("client_secret_hash", "%v", err)
		}
		if len(cl.Topics) == 0 {
			cs.Errorf("topics", "list the topics this client may read")
		}
		cs.WarnUnused("consumer_api client")
		c.Warnings = append(c.Warnings, cs.Warnings()...)
		if err := cs.Err(); err != nil {
			errs = append(errs, err)
			continue
		}
		c.Clients = append(c.Clients, cl)
	}
	sec.WarnUnused("consumer_api")
	c.Warnings = append(sec.Warnings(), c.Warnings...)
	if err := sec.Err(); err != nil {
		errs = append(config.Errors{err}, errs...)
	}
	switch len(errs) {
	case 0:
		return c, nil
	case 1:
		return Config{}, errs[0]
	}
	return Config{}, errs
}

func positiveDuration(sec *config.Section, key string, def time.Duration) time.Duration {
	d := sec.Duration(key, def)
	if d <= 0 {
		sec.Errorf(key, "must be longer than zero")
		return def
	}
	return d
}

// SourceFor resolves which source to read given the first event_broker's
// type: the configured source, else "kafka" for a Kafka broker and "sql"
// for an SQL broker. It returns "" when neither applies (a RabbitMQ or file
// broker and no consumer_api.source): the API cannot serve that broker.
func (c Config) SourceFor(brokerType string) string {
	if c.Source != "" {
		return c.Source
	}
	switch strings.ToLower(brokerType) {
	case "kafka":
		return "kafka"
	case "sql":
		return "sql"
	}
	return ""
}
