package consumer

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

var validCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e+10`, `-12.0E-3`, `true`, `false`, `null`, ` {"a" : [1, 2, {"b": null}] } `,
	`"\u00e9\n\"\\\/\b\f\r\t"`, "\"h\xc3\xa9\"", "[\n1\t,\r2]",
	// invalid
	``, ` `, `{`, `}`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `01`, `1.`, `.5`, `1e`, `-`, `+1`, `tru`, `nulll`,
	`"abc`, `"\x"`, `"\u12g4"`, "\"a\tb\"", `[1 2]`, `{"a":1 "b":2}`, `1 2`, `"a"x`, `[`, `[[[]]`, `{"a":[}`, `NaN`, `Infinity`,
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
	for _, l := range append(fixtures.RasaBytes(), fixtures.Events()...) {
		if !validJSON(l) {
			t.Errorf("fixture %s is not valid", l)
		}
		for cut := range len(l) {
			if got, want := validJSON(l[:cut]), json.Valid(l[:cut]); got != want {
				t.Fatalf("validJSON(%q) = %v, encoding/json says %v", l[:cut], got, want)
			}
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	for _, l := range fixtures.RasaBytes() {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	evs := fixtures.RasaBytes()
	size := 0
	for _, e := range evs {
		size += len(e)
	}
	b.Run("parley", func(b *testing.B) {
		b.SetBytes(int64(size))
		for b.Loop() {
			for _, e := range evs {
				validJSON(e)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(size))
		for b.Loop() {
			for _, e := range evs {
				json.Valid(e)
			}
		}
	})
}
