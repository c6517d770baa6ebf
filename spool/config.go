package spool

import (
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/idempotency"
)

// FsyncPolicy says when appended events are forced to disk.
type FsyncPolicy int

const (
	// FsyncAlways fsyncs every group-commit batch before Append returns:
	// an accepted event survives a power cut. The default.
	FsyncAlways FsyncPolicy = iota
	// FsyncInterval writes each batch before Append returns and fsyncs
	// every FsyncInterval: an accepted event survives parley crashing (the
	// kernel has it) but a power cut or kernel crash can lose the last
	// interval, as with Kafka's flush.ms or Redis's appendfsync everysec.
	FsyncInterval
	// FsyncNever leaves flushing to the kernel, cursors included, except
	// that a segment is fsynced when it is created and when the next one
	// starts. For tests and benchmarks.
	FsyncNever
)

// String returns the endpoints.yml spelling.
func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncPolicy(%d)", int(p))
}

// ParseFsyncPolicy parses always, interval or never.
func ParseFsyncPolicy(s string) (FsyncPolicy, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return FsyncAlways, true
	case "interval":
		return FsyncInterval, true
	case "never":
		return FsyncNever, true
	}
	return 0, false
}

// Defaults of Config, also used for its zero fields.
const (
	DefaultDir                   = ".parley/spool"
	DefaultMaxSize               = 1 << 30
	DefaultSegmentSize           = 64 << 20
	DefaultFsyncInterval         = 100 * time.Millisecond
	DefaultMaxBatch              = 500
	DefaultMaxBatchBytes         = 4 << 20
	DefaultRetryInitial          = 100 * time.Millisecond
	DefaultRetryMax              = 10 * time.Second
	DefaultPublishTimeout        = 30 * time.Second
	DefaultReadyFailureThreshold = 30 * time.Second
	DefaultDeliveryLinger        = 5 * time.Millisecond
	DefaultIdempotencyWindow     = idempotency.DefaultWindow
	DefaultIdempotencyMaxKeys    = 100_000
)

// Config is the spool's endpoints.yml section (`spool:`, a parley
// extension; Rasa has no equivalent and ignores it). Zero fields take the
// defaults listed on each.
type Config struct {
	// Dir holds the segments, cursors and dead letters (key dir, default
	// .parley/spool, relative to the working directory like Rasa's
	// events.db). One parley process at a time may use a directory.
	Dir string
	// MaxSize bounds the bytes of segments on disk (key max_size, default
	// 1GiB). When full, Append returns ErrFull instead of dropping
	// anything.
	MaxSize int64
	// SegmentSize is the size at which a new segment file starts (key
	// segment_size, default 64MiB, at most MaxSize/8). Segments are deleted
	// whole, so this is the granularity at which space is given back.
	SegmentSize int64
	// Fsync is when appends reach the disk (key fsync: always, the default;
	// interval; never).
	Fsync FsyncPolicy
	// FsyncInterval is the period of FsyncInterval (key fsync_interval,
	// default 100ms).
	FsyncInterval time.Duration
	// MaxBatch is the most events handed to one broker Publish call (key
	// max_batch, default 500).
	MaxBatch int
	// MaxBatchBytes bounds the Rasa bytes of one Publish call (key
	// max_batch_bytes, default 4MiB); a single larger event goes alone.
	MaxBatchBytes int64
	// RetryInitial and RetryMax shape the exponential backoff between
	// attempts of a failing batch (keys retry_initial, default 100ms, and
	// retry_max, default 10s). Delivery retries until it succeeds: an
	// outage delays events, it never drops them.
	RetryInitial, RetryMax time.Duration
	// PublishTimeout bounds one Publish attempt, so a hung connection is
	// retried instead of stalling delivery (key publish_timeout, default
	// 30s; a negative value means no limit).
	PublishTimeout time.Duration
	// DeliveryLinger is how long a delivery worker that was idle waits for
	// more events before publishing what arrived (key delivery_linger,
	// default 5ms; 0 publishes at once). Events trickling in one request at
	// a time then reach the broker in one transaction or request instead of
	// one each, which spares the broker's fsyncs and the CPU; a worker with
	// a backlog never waits.
	DeliveryLinger time.Duration
	// ReadyFailureThreshold is how long a broker may fail before Ready
	// reports parley unready (key ready_failure_threshold, default 30s).
	ReadyFailureThreshold time.Duration
	// IdempotencyWindow is how long the Idempotency-Key of a POST /events
	// batch is remembered, so that a retry is answered with the first
	// outcome instead of being accepted again (key idempotency_window,
	// default 24h, idempotency.DefaultWindow).
	IdempotencyWindow time.Duration
	// IdempotencyMaxKeys bounds the keys remembered (key
	// idempotency_max_keys, default 100000, about 20MB at most); past it
	// the oldest go first, so under more than IdempotencyMaxKeys keyed
	// requests per IdempotencyWindow the window is shorter.
	IdempotencyMaxKeys int
}

// DefaultConfig returns the configuration used without a spool section.
func DefaultConfig() Config {
	return Config{
		Dir:                   DefaultDir,
		MaxSize:               DefaultMaxSize,
		SegmentSize:           DefaultSegmentSize,
		Fsync:                 FsyncAlways,
		FsyncInterval:         DefaultFsyncInterval,
		MaxBatch:              DefaultMaxBatch,
		MaxBatchBytes:         DefaultMaxBatchBytes,
		RetryInitial:          DefaultRetryInitial,
		RetryMax:              DefaultRetryMax,
		PublishTimeout:        DefaultPublishTimeout,
		ReadyFailureThreshold: DefaultReadyFailureThreshold,
		DeliveryLinger:        DefaultDeliveryLinger,
		IdempotencyWindow:     DefaultIdempotencyWindow,
		IdempotencyMaxKeys:    DefaultIdempotencyMaxKeys,
	}
}

// Smallest values ParseConfig accepts; Open takes anything positive, so
// tests can run a tiny spool.
const (
	minMaxSize     = 1 << 20
	minSegmentSize = 64 << 10
)

// ParseConfig decodes the spool section of endpoints.yml; a nil section
// (no `spool:` key) gives DefaultConfig. It does no I/O. Errors name the
// file, line and key.
func ParseConfig(sec *config.Section) (Config, error) {
	c := DefaultConfig()
	if sec == nil {
		return c, nil
	}
	c.Dir = sec.String("dir", c.Dir)
	c.MaxSize = sec.Size("max_size", c.MaxSize)
	c.SegmentSize = sec.Size("segment_size", c.SegmentSize)
	if raw := sec.String("fsync", c.Fsync.String()); raw != "" {
		if p, ok := ParseFsyncPolicy(raw); ok {
			c.Fsync = p
		} else {
			sec.Errorf("fsync", "%q is not a fsync policy (always, interval or never)", raw)
		}
	}
	c.FsyncInterval = sec.Duration("fsync_interval", c.FsyncInterval)
	c.MaxBatch = sec.Int("max_batch", c.MaxBatch)
	c.MaxBatchBytes = sec.Size("max_batch_bytes", c.MaxBatchBytes)
	c.RetryInitial = sec.Duration("retry_initial", c.RetryInitial)
	c.RetryMax = sec.Duration("retry_max", c.RetryMax)
	c.PublishTimeout = sec.Duration("publish_timeout", c.PublishTimeout)
	c.ReadyFailureThreshold = sec.Duration("ready_failure_threshold", c.ReadyFailureThreshold)
	c.DeliveryLinger = sec.Duration("delivery_linger", c.DeliveryLinger)
	c.IdempotencyWindow = sec.Duration("idempotency_window", c.IdempotencyWindow)
	c.IdempotencyMaxKeys = sec.Int("idempotency_max_keys", c.IdempotencyMaxKeys)

	if strings.TrimSpace(c.Dir) == "" {
		sec.Errorf("dir", "must not be empty")
	}
	if c.MaxSize < minMaxSize {
		sec.Errorf("max_size", "must be at least 1MiB, got %d bytes", c.MaxSize)
	}
	if c.SegmentSize < minSegmentSize {
		sec.Errorf("segment_size", "must be at least 64KiB, got %d bytes", c.SegmentSize)
	} else if c.SegmentSize > maxSegmentSize {
		sec.Errorf("segment_size", "must be at most 1GiB, got %d bytes", c.SegmentSize)
	}
	if c.Fsync == FsyncInterval && c.FsyncInterval <= 0 {
		sec.Errorf("fsync_interval", "must be positive with fsync: interval")
	}
	if c.MaxBatch < 1 {
		sec.Errorf("max_batch", "must be at least 1")
	}
	if c.MaxBatchBytes < 1 {
		sec.Errorf("max_batch_bytes", "must be at least 1 byte")
	}
	if c.RetryInitial <= 0 {
		sec.Errorf("retry_initial", "must be positive")
	}
	if c.RetryMax < c.RetryInitial {
		sec.Errorf("retry_max", "must be at least retry_initial (%s)", c.RetryInitial)
	}
	if c.ReadyFailureThreshold <= 0 {
		sec.Errorf("ready_failure_threshold", "must be positive")
	}
	if c.DeliveryLinger > time.Second {
		sec.Errorf("delivery_linger", "must be at most 1s (it delays every idle delivery)")
	}
	if c.IdempotencyWindow <= 0 {
		sec.Errorf("idempotency_window", "must be positive")
	}
	if c.IdempotencyMaxKeys < 1 {
		sec.Errorf("idempotency_max_keys", "must be at least 1")
	}
	sec.WarnUnused("spool")
	return c, sec.Err()
}

// withDefaults fills zero fields and keeps segments small enough that
// deleting delivered ones can free a full spool.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Dir == "" {
		c.Dir = d.Dir
	}
	if c.MaxSize <= 0 {
		c.MaxSize = d.MaxSize
	}
	if c.SegmentSize <= 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.SegmentSize > maxSegmentSize {
		c.SegmentSize = maxSegmentSize
	}
	if c.SegmentSize > c.MaxSize/8 {
		c.SegmentSize = max(c.MaxSize/8, 4<<10)
	}
	if c.FsyncInterval <= 0 {
		c.FsyncInterval = d.FsyncInterval
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = d.RetryInitial
	}
	if c.RetryMax <= 0 {
		c.RetryMax = d.RetryMax
	}
	if c.RetryMax < c.RetryInitial {
		c.RetryMax = c.RetryInitial
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	if c.ReadyFailureThreshold <= 0 {
		c.ReadyFailureThreshold = d.ReadyFailureThreshold
	}
	if c.IdempotencyWindow <= 0 {
		c.IdempotencyWindow = d.IdempotencyWindow
	}
	if c.IdempotencyMaxKeys <= 0 {
		c.IdempotencyMaxKeys = d.IdempotencyMaxKeys
	}
	return c
}
