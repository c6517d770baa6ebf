package brokertest

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/config"
)

// Section parses body, the keys of one event_broker section written at
// column 0, as endpoints.yml, so that line numbers in errors are
// predictable: line 1 is "event_broker:", the first key is on line 2.
func Section(t testing.TB, body string) *config.Section {
	t.Helper()
	var b strings.Builder
	b.WriteString("event_broker:\n")
	for _, l := range strings.Split(strings.Trim(body, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	ep, err := config.Parse("endpoints.yml", []byte(b.String()))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	if len(ep.EventBrokers) != 1 {
		t.Fatalf("want one event_broker section, got %d", len(ep.EventBrokers))
	}
	return ep.EventBrokers[0]
}
