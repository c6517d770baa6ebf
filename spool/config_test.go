package spool

import (
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/config"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != DefaultConfig() {
		t.Fatalf("no section: %+v", c)
	}
	want := Config{
		Dir: ".parley/spool", MaxSize: 1 << 30, SegmentSize: 64 << 20, Fsync: FsyncAlways,
		FsyncInterval: 100 * time.Millisecond, MaxBatch: 500, MaxBatchBytes: 4 << 20,
		RetryInitial: 100 * time.Millisecond, RetryMax: 10 * time.Second, PublishTimeout: 30 * time.Second,
		ReadyFailureThreshold: 30 * time.Second, DeliveryLinger: 5 * time.Millisecond,
		IdempotencyWindow: 24 * time.Hour, IdempotencyMaxKeys: 100_000,
	}
	if c != want {
		t.Fatalf("defaults changed (update docs/spool.md):\n got %+v\nwant %+v", c, want)
	}
}

func TestParseConfigFromYAML(t *testing.T) {
	ep, err := config.Parse("endpoints.yml", []byte(`
event_broker:
  type: sql
spool:
  dir: /var/lib/parley/spool
  max_size: 2GiB
  segment_size: 16MiB
  fsync: interval
  fsync_interval: 250ms
  max_batch: 1000
  max_batch_bytes: 1MiB
  retry_initial: 0.5
  retry_max: 1m
  publish_timeout: 5s
  ready_failure_threshold: 2m
  delivery_linger: 20ms
  idempotency_window: 1h
  idempotency_max_keys: 5000
`))
	if err != nil {
		t.Fatal(err)
	}
	sec := ep.Section("spool")
	c, err := ParseConfig(sec)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Dir: "/var/lib/parley/spool", MaxSize: 2 << 30, SegmentSize: 16 << 20, Fsync: FsyncInterval,
		FsyncInterval: 250 * time.Millisecond, MaxBatch: 1000, MaxBatchBytes: 1 << 20,
		RetryInitial: 500 * time.Millisecond, RetryMax: time.Minute, PublishTimeout: 5 * time.Second,
		ReadyFailureThreshold: 2 * time.Minute, DeliveryLinger: 20 * time.Millisecond,
		IdempotencyWindow: time.Hour, IdempotencyMaxKeys: 5000,
	}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if w := sec.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"fsync: sometimes", `endpoints.yml:4: spool.fsync: "sometimes" is not a fsync policy (always, interval or never)`},
		{"max_size: 10KiB", "endpoints.yml:4: spool.max_size: must be at least 1MiB"},
		{"max_size: lots", `endpoints.yml:4: spool.max_size: "lots" is not a size`},
		{"segment_size: 2GiB", "endpoints.yml:4: spool.segment_size: must be at most 1GiB"},
		{"max_batch: 0", "endpoints.yml:4: spool.max_batch: must be at least 1"},
		{"idempotency_window: 0s", "endpoints.yml:4: spool.idempotency_window: must be positive"},
		{"idempotency_max_keys: 0", "endpoints.yml:4: spool.idempotency_max_keys: must be at least 1"},
		{"retry_initial: 2s\n  retry_max: 1s", "endpoints.yml:5: spool.retry_max: must be at least retry_initial (2s)"},
		{"fsync: interval\n  fsync_interval: 0", "endpoints.yml:5: spool.fsync_interval: must be positive"},
		{"dir: ''", "endpoints.yml:4: spool.dir: must not be empty"},
		{"ready_failure_threshold: soon", `endpoints.yml:4: spool.ready_failure_threshold: "soon" is not a duration`},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			ep, err := config.Parse("endpoints.yml", []byte("event_broker:\n  type: sql\nspool:\n  "+tc.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseConfig(ep.Section("spool"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseConfigWarnsUnknownKeys(t *testing.T) {
	sec := config.NewSection("endpoints.yml", "spool", map[string]any{"max_sise": "1GiB"})
	if _, err := ParseConfig(sec); err != nil {
		t.Fatal(err)
	}
	if w := sec.Warnings(); len(w) != 1 || !strings.Contains(w[0], "spool.max_sise: unknown key") {
		t.Fatalf("warnings %v", w)
	}
}

func TestWithDefaultsBoundsSegments(t *testing.T) {
	c := Config{MaxSize: 1 << 20}.withDefaults()
	if c.SegmentSize != 128<<10 {
		t.Errorf("segment size %d for a 1MiB spool, want 128KiB (max_size/8)", c.SegmentSize)
	}
	if c.Fsync != FsyncAlways || c.MaxBatch != DefaultMaxBatch || c.Dir != DefaultDir {
		t.Errorf("zero fields not defaulted: %+v", c)
	}
}
