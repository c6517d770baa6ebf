package privacy

import (
	"bytes"
	"testing"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// FuzzPrefilter checks, on any event, that the byte prefilter never hides
// a change the full rewrite makes, and that the rewrite leaves valid JSON.
func FuzzPrefilter(f *testing.F) {
	for _, raw := range fixtures.RasaBytes() {
		f.Add(raw)
	}
	f.Add([]byte(`{"sender_id": "x", "event": "user", "text": "call +1 (415) 555-0132 or jane@example.com", "metadata": {"iban": "DE89 3704 0044 0532 0130 00"}}`))
	f.Add([]byte(`{"sender_id": "x", "event": "slot", "name": "email", "value": ["a@b.example", 4111111111111111]}`))
	c := testConfigFuzz(f)
	known := []Learned{{Name: "email", Value: "jane@example.com"}, {Name: "person", Value: "Jane Roe"}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := event.FromRasa("id", raw)
		if err != nil {
			return
		}
		set := c.Set(0)
		fast, full := newRewriter(set, 3), newRewriter(set, 3)
		full.thorough = true
		fast.setKnown(known)
		full.setKnown(known)
		a, _, err1 := fast.event(ev, set.names.in(raw))
		b, _, err2 := full.event(ev, true)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("errors differ: %v, %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if !bytes.Equal(a.RasaJSON(), b.RasaJSON()) {
			t.Fatalf("the prefilter hid a change:\n in %s\nfast %s\nfull %s", raw, a.RasaJSON(), b.RasaJSON())
		}
		if _, err := event.ParseValue(b.RasaJSON()); err != nil {
			t.Fatalf("rewrite made invalid JSON: %v\n%s", err, b.RasaJSON())
		}
	})
}

func testConfigFuzz(f *testing.F) *Config {
	f.Helper()
	f.Setenv(DefaultHashKeyEnv, "0123456789abcdef0123456789abcdef")
	return testConfig(f, testYAML)
}
