package config

import (
	"strings"
	"testing"
)

// TestRedactedMasksEverySecret: every secret key of every section parley
// reads, and passwords inside URLs and connection strings, are masked by
// config check; keys about secrets (token_ttl) are not (issue 14).
func TestRedactedMasksEverySecret(t *testing.T) {
	const yml = `event_broker:
  - type: kafka
    url: localhost:9092
    sasl_username: parley
    sasl_password: s-kafka-password
    sasl_oauth_token: s-oauth-token
    ssl_keyfile: /etc/parley/client.key
  - type: pika
    url: amqp://user:s-amqp-url-password@rabbit:5672/vhost
    username: user
    password: s-amqp-password
  - type: sql
    dialect: postgresql
    url: postgres://u:s-pg-url-password@db/events
    password: s-pg-password
    query:
      sslpassword: s-ssl-password
  - type: sql
    dialect: postgresql
    url: "host=db user=u password=s-dsn-password dbname=x"
tracker_store:
  type: sql
  dialect: postgresql
  username: u
  password: s-tracker-password
consumer_api:
  signing_key: s-signing-key-s-signing-key-s-signing-key
  token_ttl: 5s
  private_key: s-private-key
  api_key: s-api-key
  clients:
    - client_id: app
      client_secret_hash: s-client-secret-hash
  tls_key: |
    -----BEGIN PRIVATE KEY-----
    s-pem-body
    -----END PRIVATE KEY-----
action_endpoint:
  url: https://actions:s-action-url-password@example.com/webhook
  token: s-action-token
`
	ep, err := Parse("endpoints.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	out, err := ep.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(yml, "\n") {
		if i := strings.Index(line, "s-"); i >= 0 && strings.Contains(string(out), line[i:]) {
			t.Errorf("secret %q printed:\n%s", line[i:], out)
		}
	}
	for _, want := range []string{"token_ttl: 5s", "sasl_username: parley", "client_id: app", "ssl_keyfile: /etc/parley/client.key"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%q masked or missing:\n%s", want, out)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "sasl_password": true, "signing_key": true, "private_key": true,
		"client_secret_hash": true, "sasl_oauth_token": true, "auth_token": true, "sslpassword": true,
		"apiKey": true, "API-KEY": true, "secret": true,
		"token_ttl": false, "sasl_mechanism": false, "ssl_keyfile": false, "client_id": false,
		"username": false, "topic": false, "partition_by_sender": false, "url": false,
	} {
		if got := IsSecretKey(key); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}
