// Package file is the file event broker (endpoints.yml type: file): one
// line of Rasa JSON per event appended to a file (key path, default
// rasa_event.log, as in Rasa). Rasa only flushes; parley fsyncs before
// Publish returns, batching concurrent publishes into one write and sync.
package file

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/groupcommit"
)

// DefaultPath is Rasa's default file.
const DefaultPath = "rasa_event.log"

// Config is the file broker's endpoints.yml section.
type Config struct {
	// Path is the file appended to (key path, default rasa_event.log).
	Path string
	// Format is the JSON written (parley key format: rasa, default, or
	// compact).
	Format event.Format
}

// ParseConfig decodes and validates a section.
func ParseConfig(sec *config.Section) (Config, error) {
	c := Config{Path: sec.String("path", DefaultPath)}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	f, ok := event.ParseFormat(sec.String("format", "rasa"))
	if !ok {
		sec.Errorf("format", "must be rasa or compact")
	}
	c.Format = f
	sec.WarnUnused("file")
	return c, sec.Err()
}

func init() {
	broker.Register("file", func(sec *config.Section) (broker.Opener, error) {
		c, err := ParseConfig(sec)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, env broker.Env) (broker.Broker, error) {
			return Open(c, env.LoggerOrDefault())
		}, nil
	})
}

// Broker appends events to a file.
type Broker struct {
	f         *os.File
	cfg       Config
	committer *groupcommit.Committer
	log       *slog.Logger
	closeOnce sync.Once
	closeErr  error

	// wmu serializes writes: the committer's and the streams' (stream.go).
	wmu    sync.Mutex
	buf    []byte
	epochs map[string]int // per stream id, bumped by Position
	closed bool
}

var _ broker.Broker = (*Broker)(nil)

// Open opens (creating if needed) the file for appending.
func Open(c Config, log *slog.Logger) (*Broker, error) {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	f, err := os.OpenFile(c.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("file broker: %w", err)
	}
	b := &Broker{f: f, cfg: c, log: log, epochs: map[string]int{}}
	b.committer = groupcommit.New(10000, b.write)
	log.Info("file event broker ready", "path", c.Path)
	return b, nil
}

// Path returns the file written.
func (b *Broker) Path() string { return b.cfg.Path }

// Publish appends one line per event and returns once they are fsynced.
func (b *Broker) Publish(ctx context.Context, evs ...event.Event) error {
	return b.committer.Submit(ctx, evs)
}

func (b *Broker) write(batch [][]event.Event) error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.writeLocked(batch)
}

func (b *Broker) writeLocked(batch [][]event.Event) error {
	b.buf = b.buf[:0]
	for _, evs := range batch {
		for _, ev := range evs {
			b.buf = ev.AppendJSON(b.buf, b.cfg.Format)
			b.buf = append(b.buf, '\n')
		}
	}
	// One write call: O_APPEND keeps it contiguous even if another process
	// appends to the same file.
	if _, err := b.f.Write(b.buf); err != nil {
		return fmt.Errorf("file broker: write %s: %w", b.cfg.Path, err)
	}
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("file broker: fsync %s: %w", b.cfg.Path, err)
	}
	if cap(b.buf) > 4<<20 {
		b.buf = nil // don't hold on to a burst's buffer
	}
	return nil
}

// Close writes what is queued and closes the file.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		if err := b.committer.Close(ctx); err != nil {
			b.closeErr = fmt.Errorf("file broker: close: %w", err)
			return
		}
		b.wmu.Lock()
		defer b.wmu.Unlock()
		b.closed = true
		b.closeErr = b.f.Close()
	})
	return b.closeErr
}
