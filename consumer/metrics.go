package consumer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the consumer API's Prometheus metrics.
type metrics struct {
	consumers prometheus.Gauge
	waiting   prometheus.Gauge
	records   prometheus.Counter
	requests  *prometheus.CounterVec
	resets    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		consumers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_consumer_api_consumers",
			Help: "Live REST consumer instances.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_consumer_api_waiting_reads",
			Help: "Records requests and SSE streams waiting for records.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_consumer_api_records_total",
			Help: "Records delivered to REST consumers.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_consumer_api_requests_total",
			Help: "Consumer API requests by endpoint and HTTP status.",
		}, []string{"endpoint", "code"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_consumer_api_offset_resets_total",
			Help: "Consumer positions found out of range and moved by auto.offset.reset, by policy.",
		}, []string{"policy"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.consumers, err = register(reg, m.consumers); err != nil {
		return nil, err
	}
	if m.waiting, err = register(reg, m.waiting); err != nil {
		return nil, err
	}
	if m.records, err = register(reg, m.records); err != nil {
		return nil, err
	}
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.resets, err = register(reg, m.resets); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector registered before under
// the same name (a handler made again on the same registry, as after a
// reload).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
