package spool

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// gauge returns the value of a gauge family (with broker label value
// when given) from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, brokerName string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if brokerName == "" || hasLabel(m, "broker", brokerName) {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{broker=%q} not found", name, brokerName)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	down := newGate(false)
	rec := newGate(true)
	cfg := testConfig(t.TempDir())
	s := openT(t, cfg, named("up", rec, "down", down), WithRegisterer(reg))

	publishT(t, s, seqEvents("a", 0, 30)...)
	waitEvents(t, rec.Recorder, 30)
	eventually(t, "a failed attempt on down", func() bool {
		return testutil.ToFloat64(s.m.publishFailures.WithLabelValues("down")) > 0
	})
	// The recorder has the events before the worker advances its cursor.
	eventually(t, "up's cursor past the events", func() bool {
		return gauge(t, reg, "parley_spool_depth_events", "up") == 0
	})

	for _, tc := range []struct {
		name, broker string
		want         float64
	}{
		{"parley_spool_depth_events", "up", 0},
		{"parley_spool_depth_events", "down", 30},
		{"parley_spool_broker_failing", "down", 1},
		{"parley_spool_broker_failing", "up", 0},
		{"parley_spool_oldest_undelivered_age_seconds", "up", 0},
		{"parley_spool_max_bytes", "", float64(DefaultMaxSize)},
		{"parley_spool_segments", "", 1},
		{"parley_spool_idempotency_keys", "", 0},
	} {
		if got := gauge(t, reg, tc.name, tc.broker); got != tc.want {
			t.Errorf("%s{broker=%q} = %v, want %v", tc.name, tc.broker, got, tc.want)
		}
	}
	if got := gauge(t, reg, "parley_spool_bytes", ""); got != float64(s.Status().Bytes) || got < 30*50 {
		t.Errorf("parley_spool_bytes = %v, status says %d", got, s.Status().Bytes)
	}
	eventually(t, "the oldest pending event to age", func() bool {
		return gauge(t, reg, "parley_spool_oldest_undelivered_age_seconds", "down") > 0
	})
	if got := testutil.ToFloat64(s.m.delivered.WithLabelValues("up")); got != 30 {
		t.Errorf("delivered up = %v", got)
	}
	if got := testutil.ToFloat64(s.m.delivered.WithLabelValues("down")); got != 0 {
		t.Errorf("delivered down = %v", got)
	}
	if got := testutil.ToFloat64(s.m.appended); got != 30 {
		t.Errorf("appended = %v", got)
	}
	if n := testutil.CollectAndCount(s.m.appendDuration); n != 1 {
		t.Errorf("append histogram has %d series", n)
	}
	if n := testutil.CollectAndCount(s.m.publishDuration); n != 2 {
		t.Errorf("publish histogram has %d series, want one per broker", n)
	}
	// Every series documented in docs/spool.md is exported with its help.
	names := map[string]bool{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if !strings.HasPrefix(mf.GetName(), "parley_spool_") || mf.GetHelp() == "" {
			t.Errorf("metric %s: bad name or no help", mf.GetName())
		}
	}
	for _, n := range []string{"parley_spool_append_duration_seconds", "parley_spool_publish_duration_seconds",
		"parley_spool_publish_failures_total", "parley_spool_redelivered_events_total", "parley_spool_dead_letters_total",
		"parley_spool_delivered_events_total"} {
		if !names[n] {
			t.Errorf("%s not exported", n)
		}
	}

	down.set(true)
	waitEvents(t, down.Recorder, 30)
	eventually(t, "down caught up", func() bool { return gauge(t, reg, "parley_spool_depth_events", "down") == 0 })
	if got := testutil.ToFloat64(s.m.redelivered.WithLabelValues("down")); got < 30 {
		t.Errorf("redelivered down = %v, want at least 30", got)
	}

	// Close unregisters, so a new spool can use the same registry.
	if err := closeT(t, s, time.Second); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), cfg, named("up", rec), WithRegisterer(reg), WithLogger(quietLog()))
	if err != nil {
		t.Fatalf("reopen on the same registry: %v", err)
	}
	defer s2.Close(context.Background())
	if got := gauge(t, reg, "parley_spool_depth_events", "up"); got != 0 {
		t.Errorf("depth after reopen = %v", got)
	}
}
