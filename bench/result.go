package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one measured run.
type Result struct {
	Name     string        `json:"name"`
	Events   int           `json:"events"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	// Latency is per publish call (publish benchmarks) or per request
	// (ingest), when measured.
	Latency *Summary `json:"latency,omitempty"`
	// Baseline names the result this one is compared with, and Ratio is
	// this one's throughput divided by the baseline's.
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// EventsPerSec is the throughput.
func (r Result) EventsPerSec() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Events) / r.Duration.Seconds()
}

// Compare sets r's ratio against base.
func (r *Result) Compare(base Result) {
	if b := base.EventsPerSec(); b > 0 {
		r.Baseline, r.Ratio = base.Name, r.EventsPerSec()/b
	}
}

// WriteTable prints results as an aligned table.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\tevents\tevents/s\tMB/s\tp50\tp99\tp999\tvs\tratio\t")
	for _, r := range rs {
		p50, p99, p999 := "-", "-", "-"
		if r.Latency != nil && r.Latency.Count > 0 {
			p50, p99, p999 = fmtDur(r.Latency.P50), fmtDur(r.Latency.P99), fmtDur(r.Latency.P999)
		}
		ratio, vs := "-", "-"
		if r.Baseline != "" {
			ratio, vs = fmt.Sprintf("%.2fx", r.Ratio), r.Baseline
		}
		mbs := float64(r.Bytes) / 1e6 / r.Duration.Seconds()
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.Events, r.EventsPerSec(), mbs, p50, p99, p999, vs, ratio)
	}
	return tw.Flush()
}

// WriteJSON prints results as a JSON array.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return strings.TrimSuffix(fmt.Sprintf("%.2fms", float64(d)/1e6), ".00ms")
	}
	return d.Round(time.Millisecond).String()
}

// Median returns the result with the median duration of rs (the upper
// one of an even count).
func Median(rs []Result) Result {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b Result) int { return cmp.Compare(a.Duration, b.Duration) })
	return sorted[len(sorted)/2]
}
