package event

import (
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

// benchLine is a typical user event with parse data: the largest fixture.
func benchLine() []byte { return fixtures.Events()[3] }

func BenchmarkParse(b *testing.B) {
	line := benchLine()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRasaJSON(b *testing.B) {
	ev, err := Parse(benchLine())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(ev.RasaJSON())))
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0], FormatRasa)
	}
}

func BenchmarkParseValidateEncode(b *testing.B) {
	line := benchLine()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		ev, err := Parse(line)
		if err != nil {
			b.Fatal(err)
		}
		if err := ev.ValidateForPublish(); err != nil {
			b.Fatal(err)
		}
		_ = ev.RasaJSON()
	}
}

// BenchmarkCanonical is the cost of Rasa's re-serialization of a parsed
// event (the conversation API and export pay it per event, on top of
// BenchmarkParse).
func BenchmarkCanonical(b *testing.B) {
	ev, err := Parse(benchLine())
	if err != nil {
		b.Fatal(err)
	}
	now := func() float64 { return 1700000000 }
	for b.Loop() {
		if _, err := Canonical(ev, now); err != nil {
			b.Fatal(err)
		}
	}
}
