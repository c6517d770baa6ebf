package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, yml string) *Endpoints {
	t.Helper()
	ep, err := Parse("endpoints.yml", []byte(yml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return ep
}

func TestTypedAccessors(t *testing.T) {
	ep := mustParse(t, `
event_broker:
  type: Kafka
  url: [a:9092, "b:9092"]
  port: "5672"
  partition_by_sender: True
  ssl_check_hostname: no
  retry: 2.5
  linger: 5ms
  max: 64MiB
  topic:
`)
	if len(ep.EventBrokers) != 1 {
		t.Fatalf("brokers: %d", len(ep.EventBrokers))
	}
	s := ep.EventBrokers[0]
	if got := s.Type(); got != "kafka" {
		t.Errorf("Type = %q", got)
	}
	if got := s.StringList("url", nil); strings.Join(got, ",") != "a:9092,b:9092" {
		t.Errorf("url = %v", got)
	}
	if got := s.Int("port", 0); got != 5672 {
		t.Errorf("port = %d", got)
	}
	if !s.Bool("partition_by_sender", false) || s.Bool("ssl_check_hostname", true) {
		t.Errorf("bools wrong")
	}
	if got := s.Float("retry", 0); got != 2.5 {
		t.Errorf("retry = %v", got)
	}
	if got := s.Duration("linger", 0); got != 5*time.Millisecond {
		t.Errorf("linger = %v", got)
	}
	if got := s.Size("max", 0); got != 64<<20 {
		t.Errorf("max = %d", got)
	}
	if got := s.String("topic", "rasa_core_events"); got != "rasa_core_events" {
		t.Errorf("null topic should take the default, got %q", got)
	}
	if got := s.String("client_id", "def"); got != "def" {
		t.Errorf("absent key should take the default, got %q", got)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if u := s.Unused(); len(u) != 0 {
		t.Errorf("unused = %v", u)
	}
}

func TestErrorsNameFileLineKey(t *testing.T) {
	ep := mustParse(t, "event_broker:\n  type: pika\n  host: localhost\n  port: abc\n  queues: {a: 1}\n")
	s := ep.EventBrokers[0]
	s.Int("port", 5672)
	s.StringList("queues", nil)
	err := s.Err()
	want := []string{
		`endpoints.yml:4: event_broker.port: "abc" is not a number`,
		`endpoints.yml:5: event_broker.queues: must be a list or a comma-separated string, not a mapping`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 4 || ce.Key != "event_broker.port" {
		t.Fatalf("errors.As: %+v", ce)
	}
}

func TestEnvSubstitution(t *testing.T) {
	t.Setenv("PARLEY_TEST_PW", "s3cret")
	t.Setenv("PARLEY_TEST_PORT", "6000")
	ep := mustParse(t, "event_broker:\n  type: pika\n  password: ${PARLEY_TEST_PW}\n  port: ${PARLEY_TEST_PORT}\n  url: amqp://u:${PARLEY_TEST_PW}@h/vh\n")
	s := ep.EventBrokers[0]
	if got := s.String("password", ""); got != "s3cret" {
		t.Errorf("password = %q", got)
	}
	if got := s.Int("port", 0); got != 6000 {
		t.Errorf("port = %d", got)
	}
	if got := s.String("url", ""); got != "amqp://u:s3cret@h/vh" {
		t.Errorf("url = %q", got)
	}
	red, err := ep.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(red), "s3cret") || !strings.Contains(string(red), "amqp://u:"+Mask+"@h/vh") {
		t.Errorf("redacted output leaks or mangles:\n%s", red)
	}
}

func TestParseErrors(t *testing.T) {
	os.Unsetenv("PARLEY_SURELY_UNSET")
	cases := []struct{ yml, want string }{
		{"event_broker:\n  type: sql\n  password: ${PARLEY_SURELY_UNSET}\n", "endpoints.yml:3: event_broker.password: environment variable ${PARLEY_SURELY_UNSET} is not set"},
		{"event_broker:\n  type: sql\n  db: [unclosed\n", "endpoints.yml:2: YAML syntax error: did not find expected ',' or ']'"},
		{"event_broker:\n\ttype: sql\n", "endpoints.yml:2: YAML syntax error"},
		{"event_broker:\n  type: sql\n  type: kafka\n", "endpoints.yml:3: event_broker.type: key repeated (first on line 2)"},
		{"- a\n- b\n", "endpoints.yml:1: the file must be a mapping"},
		{"event_broker: kafka\n", "endpoints.yml:1: event_broker: must be a mapping or a list of mappings, not a value"},
		{"event_broker:\n  - type: file\n  - nope\n", "endpoints.yml:3: event_broker[1]: must be a mapping"},
	}
	for _, c := range cases {
		_, err := Parse("endpoints.yml", []byte(c.yml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.yml, err, c.want)
		}
	}
}

func TestBrokerList(t *testing.T) {
	ep := mustParse(t, "event_broker:\n  - type: file\n    path: a.log\n  - type: sql\n    db: x.db\n")
	if len(ep.EventBrokers) != 2 || ep.EventBrokers[1].Path() != "event_broker[1]" || ep.EventBrokers[1].Line() != 4 {
		t.Fatalf("got %d brokers, second %q line %d", len(ep.EventBrokers), ep.EventBrokers[1].Path(), ep.EventBrokers[1].Line())
	}
	s := ep.EventBrokers[1]
	s.Int("db", 0)
	if err := s.Err(); err == nil || !strings.HasPrefix(err.Error(), "endpoints.yml:5: event_broker[1].db:") {
		t.Fatalf("got %v", err)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ep, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !ep.Default || ep.File != EmbeddedName {
		t.Fatalf("want built-in defaults, got %q", ep.File)
	}
	b := ep.EventBrokers[0]
	if b.Type() != "sql" || b.String("db", "") != "events.db" || b.String("dialect", "") != "sqlite" {
		t.Fatalf("default broker: %s %s", b.Type(), b.String("db", ""))
	}
	if ts := ep.Section("tracker_store"); ts == nil || ts.String("db", "") != "rasa.db" {
		t.Fatalf("default tracker store missing")
	}
	// A file without event_broker still publishes to the default broker.
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte("action_endpoint:\n  url: http://x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ep, err = Load("")
	if err != nil {
		t.Fatal(err)
	}
	if ep.File != DefaultFile || len(ep.EventBrokers) != 1 || ep.EventBrokers[0].Type() != "sql" {
		t.Fatalf("file without event_broker: %q %d", ep.File, len(ep.EventBrokers))
	}
	if ep.Section("tracker_store") != nil {
		t.Fatalf("tracker_store absent from the file must stay absent (in-memory, as in Rasa)")
	}
}

func TestUnusedKeysWarn(t *testing.T) {
	ep := mustParse(t, "event_broker:\n  type: file\n  path: x\n  pathh: y\n")
	s := ep.EventBrokers[0]
	s.String("path", "")
	s.WarnUnused("file")
	if w := s.Warnings(); len(w) != 1 || w[0] != "endpoints.yml:4: event_broker.pathh: unknown key for type file, ignored" {
		t.Fatalf("warnings: %v", w)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "512 MiB": 512 << 20, "10MB": 10e6, "4096": 4096, "1.5k": 1536} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseSize("lots"); err == nil {
		t.Error("ParseSize(lots) accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("event_broker:\n  type: kafka\n  url: a,b\n"))
	f.Add([]byte("event_broker:\n  - type: sql\n  - type: file\n    path: ${HOME}\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte(billionLaughs()))
	f.Add([]byte("a: &a {type: file}\nevent_broker:\n  <<: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each input has a time bound, so that an input that stalls the
		// loader (an alias bomb) fails the fuzzer instead of passing it at
		// 0 execs/s.
		done := make(chan string, 1)
		go func() { done <- fuzzParseOnce(data) }()
		select {
		case msg := <-done:
			if msg != "" {
				t.Fatal(msg)
			}
		case <-time.After(fuzzInputBound):
			t.Fatalf("Parse of %d bytes took more than %v: %q", len(data), fuzzInputBound, data)
		}
	})
}

// fuzzInputBound is generous for a race-instrumented run on a busy
// machine; a bounded parse of a small input takes milliseconds.
const fuzzInputBound = 5 * time.Second

// fuzzParseOnce runs the checks of FuzzParse on data and returns what
// failed, or "".
func fuzzParseOnce(data []byte) string {
	ep, err := Parse("f.yml", data)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "f.yml") {
			return fmt.Sprintf("error does not name the file: %v", err)
		}
		return ""
	}
	for _, s := range ep.EventBrokers {
		s.Type()
		s.Int("port", 0)
		s.StringList("url", nil)
		s.Bool("x", false)
		s.Sub("y")
		if err := s.Err(); err != nil && !strings.HasPrefix(err.Error(), "f.yml") {
			return fmt.Sprintf("error does not name the file: %v", err)
		}
	}
	if _, err := ep.Redacted(); err != nil {
		return fmt.Sprintf("Redacted: %v", err)
	}
	return ""
}
