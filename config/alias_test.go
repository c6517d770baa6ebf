package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// billionLaughs is the review's 377-byte endpoints.yml: nine levels of
// aliases, each ten times the one before.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 'b'; i <= 'i'; i++ {
		fmt.Fprintf(&b, "%c: &%c [", i, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "*%c", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("event_broker:\n  type: file\n  path: *i\n")
	return b.String()
}

// parseWithin parses data, failing the test if that takes longer than d.
func parseWithin(t *testing.T, d time.Duration, data []byte) (*Endpoints, error) {
	t.Helper()
	type result struct {
		ep  *Endpoints
		err error
	}
	done := make(chan result, 1)
	go func() {
		ep, err := Parse("endpoints.yml", data)
		if err == nil {
			_, err = ep.Redacted()
		}
		done <- result{ep, err}
	}()
	select {
	case r := <-done:
		return r.ep, r.err
	case <-time.After(d):
		t.Fatalf("parsing %d bytes took more than %v", len(data), d)
		return nil, nil
	}
}

// TestAliasBomb: nested aliases fail fast with an error naming the line
// of the alias, instead of expanding to billions of values (issue 14).
func TestAliasBomb(t *testing.T) {
	yml := billionLaughs()
	_, err := parseWithin(t, 5*time.Second, []byte(yml))
	want := `endpoints.yml:6: f[0]: aliases expand to more than 100000 values`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	// Aliases within the bounds still work.
	ep, err := parseWithin(t, 5*time.Second, []byte("base: &b rasa_event.log\nevent_broker:\n  type: file\n  path: *b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ep.EventBrokers[0].String("path", ""); got != "rasa_event.log" {
		t.Fatalf("path = %q", got)
	}
}

// TestMergeKeys: YAML merge keys (<<:) merge a mapping or a list of them;
// the mapping's own keys win, then the first listed (issue 14).
func TestMergeKeys(t *testing.T) {
	yml := `kafka_defaults: &kafka
  type: kafka
  url: localhost:9092
  security_protocol: PLAINTEXT
  topic: default_topic
tls: &tls
  security_protocol: SSL
  client_id: from_tls
event_broker:
  <<: [*kafka, *tls]
  topic: rasa_core_events
`
	ep, err := parseWithin(t, 5*time.Second, []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	s := ep.EventBrokers[0]
	for key, want := range map[string]string{"type": "kafka", "url": "localhost:9092", "topic": "rasa_core_events", "security_protocol": "PLAINTEXT", "client_id": "from_tls"} {
		if got := s.String(key, ""); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if _, err := parseWithin(t, 5*time.Second, []byte("a: &a x\nevent_broker:\n  <<: *a\n")); err == nil || !strings.Contains(err.Error(), "endpoints.yml:3: event_broker: << (merge key) must merge a mapping or a list of mappings, got a value") {
		t.Fatalf("merging a scalar: %v", err)
	}
}
