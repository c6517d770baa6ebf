package spool

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the spool's Prometheus metrics, all named parley_spool_*.
// Per-broker series carry a broker label (the name from broker.Named).
type metrics struct {
	s   *Spool
	reg prometheus.Registerer

	appended         prometheus.Counter
	rejectedFull     prometheus.Counter
	appendErrors     prometheus.Counter
	appendDuration   prometheus.Histogram
	writeDuration    prometheus.Histogram
	tornBytes        prometheus.Counter
	damagedBytes     prometheus.Counter
	segmentsRemoved  prometheus.Counter
	checkpointErrors prometheus.Counter

	delivered       *prometheus.CounterVec
	redelivered     *prometheus.CounterVec
	deadLetters     *prometheus.CounterVec
	publishFailures *prometheus.CounterVec
	lost            *prometheus.CounterVec
	publishDuration *prometheus.HistogramVec

	registered []prometheus.Collector
}

func newMetrics(s *Spool) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "parley", Subsystem: "spool", Name: name, Help: help})
	}
	perBroker := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "parley", Subsystem: "spool", Name: name, Help: help}, []string{"broker"})
	}
	return &metrics{
		s:                s,
		appended:         counter("appended_events_total", "Events accepted into the spool."),
		rejectedFull:     counter("rejected_full_events_total", "Events refused with ErrFull because the spool was at max_size."),
		appendErrors:     counter("append_errors_total", "Group-commit writes that failed (disk full, I/O error); their events were refused, not lost."),
		appendDuration:   prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "parley", Subsystem: "spool", Name: "append_duration_seconds", Help: "Time for Append to make events durable, group-commit wait included.", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)}),
		writeDuration:    prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "parley", Subsystem: "spool", Name: "write_duration_seconds", Help: "Time of one group-commit write, fsync included.", Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18)}),
		tornBytes:        counter("torn_bytes_total", "Bytes of interrupted, unacknowledged writes cut off the log at start-up."),
		damagedBytes:     counter("damaged_bytes_total", "Bytes of corrupt records skipped by delivery."),
		segmentsRemoved:  counter("segments_removed_total", "Segments removed after every broker passed them."),
		checkpointErrors: counter("checkpoint_errors_total", "Failed writes of the cursor file."),
		delivered:        perBroker("delivered_events_total", "Events the broker confirmed."),
		redelivered:      perBroker("redelivered_events_total", "Events published again after an attempt that failed and may have partly reached the broker."),
		deadLetters:      perBroker("dead_letters_total", "Events the broker rejected permanently, written to its dead-letter file."),
		publishFailures:  perBroker("publish_failures_total", "Failed publish attempts."),
		lost:             perBroker("lost_events_total", "Events skipped because on-disk corruption made them unreadable."),
		publishDuration:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "parley", Subsystem: "spool", Name: "publish_duration_seconds", Help: "Time of one broker publish attempt.", Buckets: prometheus.ExponentialBuckets(100e-6, 2, 18)}, []string{"broker"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.appended, m.rejectedFull, m.appendErrors, m.appendDuration, m.writeDuration, m.tornBytes, m.damagedBytes,
		m.segmentsRemoved, m.checkpointErrors, m.delivered, m.redelivered, m.deadLetters, m.publishFailures, m.lost,
		m.publishDuration, gauges{m.s},
	}
}

// register registers every metric on reg (nothing when reg is nil),
// undoing a partial registration on error.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	m.reg = reg
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return err
		}
		m.registered = append(m.registered, c)
	}
	return nil
}

func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

var (
	descBytes    = prometheus.NewDesc("parley_spool_bytes", "Bytes of segment files on disk.", nil, nil)
	descMaxBytes = prometheus.NewDesc("parley_spool_max_bytes", "The spool's max_size: at this size Append returns ErrFull.", nil, nil)
	descSegments = prometheus.NewDesc("parley_spool_segments", "Segment files on disk.", nil, nil)
	descDepth    = prometheus.NewDesc("parley_spool_depth_events", "Events in the spool not yet delivered to the broker.", []string{"broker"}, nil)
	descOldest   = prometheus.NewDesc("parley_spool_oldest_undelivered_age_seconds", "Age of the oldest event not yet delivered to the broker (0 when caught up).", []string{"broker"}, nil)
	descFailing  = prometheus.NewDesc("parley_spool_broker_failing", "1 while delivery to the broker is failing.", []string{"broker"}, nil)
	descFailFor  = prometheus.NewDesc("parley_spool_broker_failing_seconds", "How long delivery to the broker has been failing (0 when healthy).", []string{"broker"}, nil)
	descKeys     = prometheus.NewDesc("parley_spool_idempotency_keys", "Idempotency-Keys of POST /events remembered (bounded by idempotency_max_keys).", nil, nil)
)

// gauges reads the spool's state at scrape time.
type gauges struct{ s *Spool }

func (g gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBytes, descMaxBytes, descSegments, descDepth, descOldest, descFailing, descFailFor, descKeys} {
		ch <- d
	}
}

func (g gauges) Collect(ch chan<- prometheus.Metric) {
	s := g.s
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.disk.Load()))
	ch <- prometheus.MustNewConstMetric(descMaxBytes, prometheus.GaugeValue, float64(s.cfg.MaxSize))
	s.mu.Lock()
	nsegs := len(s.segs)
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, float64(nsegs))
	ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(s.keys.len()))
	now := time.Now()
	end := s.committed.Load()
	for _, w := range s.workers {
		st := w.status(end, now)
		failing, failFor := 0.0, 0.0
		if st.Failing {
			failing, failFor = 1, now.Sub(st.FailingSince).Seconds()
		}
		age := 0.0
		if !st.OldestPending.IsZero() {
			age = max(now.Sub(st.OldestPending).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(st.Pending), w.name)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, w.name)
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, w.name)
		ch <- prometheus.MustNewConstMetric(descFailFor, prometheus.GaugeValue, failFor, w.name)
	}
}
