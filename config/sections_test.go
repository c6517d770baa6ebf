package config

import (
	"strings"
	"testing"
)

// TestSectionWarnings: a misspelt top-level section is a warning with its
// line and the closest known name; Rasa's own sections are not (issue 14).
func TestSectionWarnings(t *testing.T) {
	ep, err := Parse("endpoints.yml", []byte("action_endpoint:\n  url: http://a\nevent_brokr:\n  type: sql\ntraker_store: {}\nspol: {}\nsomething_else: 1\nmodels: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(ep.SectionWarnings(), "\n")
	want := strings.Join([]string{
		"endpoints.yml:3: event_brokr: unknown section, ignored (did you mean event_broker?)",
		"endpoints.yml:5: traker_store: unknown section, ignored (did you mean tracker_store?)",
		"endpoints.yml:6: spol: unknown section, ignored (did you mean spool?)",
		"endpoints.yml:7: something_else: unknown section, ignored",
	}, "\n")
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
