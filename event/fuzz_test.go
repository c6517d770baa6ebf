package event

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

// FuzzParse checks that whatever the parser accepts encodes to valid JSON
// in both formats and parses back to the same value.
func FuzzParse(f *testing.F) {
	for _, l := range fixtures.Events() {
		f.Add(l)
	}
	f.Add([]byte(`{"a":"\ud800\udc00\ud800","b":-0,"c":1E+2,"d":[{}]}`))
	f.Add([]byte(`{"sender_id":"x","event":"bot","timestamp":1e-7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Parse(data)
		if err != nil {
			return
		}
		_ = ev.Validate()
		for _, format := range []Format{FormatRasa, FormatCompact, FormatUJSON} {
			out := ev.AppendJSON(nil, format)
			if !json.Valid(out) {
				t.Fatalf("%s output is not JSON: %q", format, out)
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%q", format, err, out)
			}
			if back.SenderID != ev.SenderID || !Equal(back.Body(), ev.Body()) {
				t.Fatalf("%s round trip changed the event:\n in %q\nout %q", format, data, out)
			}
		}
	})
}
