package server

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's own; the spool and the APIs register theirs on
// the same registry.
type metrics struct {
	received    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	replayed    prometheus.Counter
	acceptDelay prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_events_received_total",
			Help: "Events accepted over HTTP, by endpoint.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_ingest_rejected_total",
			Help: "Ingest requests refused, by reason (invalid, too_large, full, unauthorized, bad_idempotency_key, key_reused, error).",
		}, []string{"reason"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_ingest_replayed_total",
			Help: "POST /events requests answered with the outcome recorded for their Idempotency-Key, accepting nothing again.",
		}),
		acceptDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_ingest_accept_seconds",
			Help:    "Time from request to durable acceptance of POST /events.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
	}
	reg.MustRegister(m.received, m.rejected, m.replayed, m.acceptDelay)
	return m
}
