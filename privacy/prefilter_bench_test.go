package privacy

import (
	"testing"

	"github.com/parleyhq/parley/bench"
)

// BenchmarkPrefilter measures the per-event test that lets events without
// PII through unparsed.
func BenchmarkPrefilter(b *testing.B) {
	c := testConfig(b, testYAML)
	a, err := New(c, Env{})
	if err != nil {
		b.Fatal(err)
	}
	evs, err := bench.Events(840, 50)
	if err != nil {
		b.Fatal(err)
	}
	raws := make([][]byte, len(evs))
	for i, ev := range evs {
		raws[i] = ev.RasaJSON()
	}
	w := newRewriter(c.Set(0), 3)
	for _, f := range []struct {
		name string
		fn   func([]byte) bool
	}{
		{"names", a.names.in},
		{"scan", func(r []byte) bool { return scanStrings(r, w.need) }},
		{"both", func(r []byte) bool { return w.mayMatch(r, a.names.in(r)) }},
	} {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				for _, r := range raws {
					f.fn(r)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(raws)), "ns/event")
		})
	}
}
