package ui

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The spool's counters the delivery page charts (spool/metrics.go).
const (
	metricDelivered = "parley_spool_delivered_events_total"
	metricFailures  = "parley_spool_publish_failures_total"
	metricDead      = "parley_spool_dead_letters_total"
	metricAppended  = "parley_spool_appended_events_total"
)

// sample is the spool's counters at one time.
type sample struct {
	at       time.Time
	accepted float64
	brokers  map[string]brokerCounts
}

type brokerCounts struct{ delivered, failures, dead float64 }

// rates samples the metrics registry every interval and keeps the samples
// of the last window, from which the delivery page draws its chart.
type rates struct {
	g        prometheus.Gatherer
	interval time.Duration
	window   time.Duration

	mu      sync.Mutex
	samples []sample
}

func (r *rates) run(ctx context.Context) {
	r.take(time.Now())
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.take(now)
		}
	}
}

func (r *rates) take(now time.Time) {
	if r.g == nil {
		return
	}
	mfs, err := r.g.Gather()
	if err != nil && len(mfs) == 0 {
		return
	}
	s := sample{at: now, brokers: map[string]brokerCounts{}}
	for _, mf := range mfs {
		name := mf.GetName()
		if name != metricDelivered && name != metricFailures && name != metricDead && name != metricAppended {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			if name == metricAppended {
				s.accepted = v
				continue
			}
			var b string
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "broker" {
					b = lp.GetValue()
				}
			}
			c := s.brokers[b]
			switch name {
			case metricDelivered:
				c.delivered = v
			case metricFailures:
				c.failures = v
			case metricDead:
				c.dead = v
			}
			s.brokers[b] = c
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
	cut := now.Add(-r.window - r.interval)
	i := 0
	for i < len(r.samples) && r.samples[i].at.Before(cut) {
		i++
	}
	r.samples = slices.Delete(r.samples, 0, i)
}

// point is the per-second rates between two samples.
type point struct {
	at                            time.Time
	accepted                      float64
	delivered, failures, deadRate map[string]float64
}

// series returns the rates between consecutive samples, oldest first.
func (r *rates) series() []point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []point
	for i := 1; i < len(r.samples); i++ {
		a, b := r.samples[i-1], r.samples[i]
		dt := b.at.Sub(a.at).Seconds()
		if dt <= 0 {
			continue
		}
		p := point{at: b.at, accepted: max(b.accepted-a.accepted, 0) / dt,
			delivered: map[string]float64{}, failures: map[string]float64{}, deadRate: map[string]float64{}}
		for name, cb := range b.brokers {
			ca := a.brokers[name]
			p.delivered[name] = max(cb.delivered-ca.delivered, 0) / dt
			p.failures[name] = max(cb.failures-ca.failures, 0) / dt
			p.deadRate[name] = max(cb.dead-ca.dead, 0) / dt
		}
		out = append(out, p)
	}
	return out
}

// latest returns the newest sample's counters.
func (r *rates) latest() (sample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return sample{}, false
	}
	return r.samples[len(r.samples)-1], true
}
