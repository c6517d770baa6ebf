package consumer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer"
)

func parse(t *testing.T, yml string) (consumer.Config, error) {
	t.Helper()
	ep, err := config.Parse("endpoints.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return consumer.ParseConfig(ep.Section("consumer_api"))
}

func TestParseConfig(t *testing.T) {
	hash := cheapHash(t, "secret")
	c, err := parse(t, `
consumer_api:
  source: SQL
  topic: conversations
  table: rasa_events
  signing_key: "0123456789abcdef0123456789abcdef"
  token_ttl: 10m
  consumer_idle_timeout: 90s
  rate_limit: 2.5
  max_records: 100
  max_bytes: 1MiB
  request_timeout: 2s
  clients:
    - client_id: analytics
      client_secret_hash: "`+hash+`"
      topics: [conversations]
    - client_id: crm
      client_secret_hash: "`+hash+`"
      topics: conversations, other
      groups: [crm, "crm-*"]
    - client_id: "appID:NMDP_app:geo:us:clientName:neap"
      client_secret_hash: "`+hash+`"
      topics: [conversations]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "sql" || c.Topic != "conversations" || c.Table != "rasa_events" || c.TokenTTL != 10*time.Minute ||
		c.IdleTimeout != 90*time.Second || c.RateLimit != 2.5 || c.RateBurst != 3 || c.MaxRecords != 100 || c.MaxBytes != 1<<20 ||
		c.RequestTimeout != 2*time.Second || string(c.SigningKey) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("parsed %+v", c)
	}
	if len(c.Clients) != 3 || c.Clients[1].ID != "crm" || strings.Join(c.Clients[1].Topics, ",") != "conversations,other" ||
		strings.Join(c.Clients[1].Groups, ",") != "crm,crm-*" || c.Clients[0].Groups != nil || c.Clients[2].ID != "appID:NMDP_app:geo:us:clientName:neap" {
		t.Fatalf("clients %+v", c.Clients)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := consumer.ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	def := consumer.DefaultConfig()
	if c.Topic != "" || c.IdleTimeout != 5*time.Minute || c.RateLimit != 10 || c.TokenTTL != def.TokenTTL || len(c.Clients) != 0 {
		t.Fatalf("defaults %+v", c)
	}
	for _, tc := range []struct{ source, broker, want string }{
		{"", "kafka", "kafka"}, {"", "sql", "sql"}, {"", "pika", ""}, {"sql", "kafka", "sql"},
	} {
		if got := (consumer.Config{Source: tc.source}).SourceFor(tc.broker); got != tc.want {
			t.Errorf("SourceFor(%q) with source %q = %q, want %q", tc.broker, tc.source, got, tc.want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ yml, want string }{
		{"consumer_api:\n  source: rabbit\n", `endpoints.yml:2: consumer_api.source: "rabbit" is not a consumer API source (want kafka or sql)`},
		{"consumer_api:\n  signing_key: short\n", "endpoints.yml:2: consumer_api.signing_key: must be at least 32 bytes"},
		{"consumer_api:\n  rate_limit: -1\n", "endpoints.yml:2: consumer_api.rate_limit: must not be negative"},
		{"consumer_api:\n  consumer_idle_timeout: 0s\n", "endpoints.yml:2: consumer_api.consumer_idle_timeout: must be longer than zero"},
		{"consumer_api:\n  table: \"x;y\"\n", `consumer_api.table: "x;y" is not a plain SQL table name`},
		{"consumer_api:\n  clients:\n    - client_id: a\n      client_secret: plain\n      topics: [t]\n", "endpoints.yml:4: consumer_api.clients[0].client_secret: secrets are not stored in clear"},
		{"consumer_api:\n  clients:\n    - client_id: a\n      client_secret_hash: md5$abc\n      topics: [t]\n", "endpoints.yml:4: consumer_api.clients[0].client_secret_hash: not a parley secret hash"},
		{"consumer_api:\n  clients:\n    - client_secret_hash: x\n", "consumer_api.clients[0].client_id: is required"},
		{"consumer_api:\n  clients:\n    - client_id: a\n      client_secret_hash: x\n", "consumer_api.clients[0].topics: list the topics this client may read"},
	}
	for _, c := range cases {
		_, err := parse(t, c.yml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.yml, err, c.want)
		}
	}
	// Unknown keys are warnings, not errors.
	c, err := parse(t, "consumer_api:\n  topik: x\n")
	if err != nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "topik") {
		t.Fatalf("warnings %v, err %v", c.Warnings, err)
	}
}
