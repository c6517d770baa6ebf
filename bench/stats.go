package bench

import (
	"slices"
	"sync"
	"time"
)

// Latencies collects durations and reports percentiles. It keeps every
// sample: a benchmark run has at most a few million, and exact
// percentiles beat a sketch for p999.
type Latencies struct {
	mu      sync.Mutex
	samples []time.Duration
}

// Add records one sample.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// Summary is a latency distribution.
type Summary struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary computes the percentiles of the samples so far.
func (l *Latencies) Summary() Summary {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q * float64(len(s)-1))
		return s[i]
	}
	return Summary{Count: len(s), P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: s[len(s)-1]}
}
