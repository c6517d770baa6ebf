package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// Exactly once into the file. Rasa's lines carry no event id, so lines
// are matched by byte offset: after each batch's lines are written and
// fsynced, the position file (the file's path + ".parley-position",
// replaced atomically) records the stream's position and the file's size.
// A crash between the two leaves lines past the recorded size that the
// spool will write again; Position cuts them off first, so each event is
// in the file once. This holds while the spool is the file's only writer
// (as under parley serve); a line another process appended after the
// recorded size would be cut too, which Position logs.

// positionSuffix names the position file beside the events file.
const positionSuffix = ".parley-position"

type positionState struct {
	Stream   string `json:"stream"`
	Position uint64 `json:"position"`
	Offset   int64  `json:"offset"` // the file's size after the batch
}

var _ broker.Positioned = (*Broker)(nil)

// ErrFenced is returned by a stream's PublishAt after another handle of
// the same stream asked for the position.
var ErrFenced = errors.New("file broker: stream taken over by a newer writer")

// OpenStream returns the stream id's handle; its first Position call
// fences earlier handles.
func (b *Broker) OpenStream(_ context.Context, id string) (broker.Stream, error) {
	return &stream{b: b, id: id}, nil
}

type stream struct {
	b     *Broker
	id    string
	epoch int // 0 until Position
	st    positionState
}

func (b *Broker) positionPath() string { return b.cfg.Path + positionSuffix }

// Position reads the position file and cuts off the lines written after
// the position it records.
func (s *stream) Position(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b := s.b
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed {
		return 0, broker.ErrClosed
	}
	b.epochs[s.id]++
	s.epoch = b.epochs[s.id]
	fi, err := b.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("file broker: %w", err)
	}
	size := fi.Size()
	var st positionState
	data, err := os.ReadFile(b.positionPath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// First use (or a file written before parley recorded positions):
		// nothing to cut, the spool's cursor says where to resume.
		st = positionState{Stream: s.id, Offset: size}
	case err != nil:
		return 0, fmt.Errorf("file broker: %w", err)
	default:
		if err := json.Unmarshal(data, &st); err != nil {
			return 0, fmt.Errorf("file broker: %s is damaged (delete it to resume from the spool's cursor, which may write recent events twice): %w", b.positionPath(), err)
		}
	}
	if st.Stream != s.id {
		b.log.Warn("file broker: the position file belongs to another spool; this one resumes from its own cursor",
			"position_file", b.positionPath(), "stream", st.Stream)
		st = positionState{Stream: s.id, Offset: size}
	}
	switch {
	case size > st.Offset:
		b.log.Warn("file broker: cutting lines written after the last recorded position (a crash came between their fsync and the position's); they are written again",
			"path", b.cfg.Path, "offset", st.Offset, "bytes", size-st.Offset)
		if err := b.f.Truncate(st.Offset); err != nil {
			return 0, fmt.Errorf("file broker: cut %s at %d: %w", b.cfg.Path, st.Offset, err)
		}
		if err := b.f.Sync(); err != nil {
			return 0, fmt.Errorf("file broker: fsync %s: %w", b.cfg.Path, err)
		}
	case size < st.Offset:
		b.log.Warn("file broker: the file is shorter than when the position was recorded (truncated or replaced by someone else); appending from its end",
			"path", b.cfg.Path, "recorded_offset", st.Offset, "size", size)
		st.Offset = size
	}
	s.st = st
	return st.Position, nil
}

// PublishAt appends evs, fsyncs, then records next and the new size.
func (s *stream) PublishAt(ctx context.Context, prev, next uint64, evs ...event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := s.b
	b.wmu.Lock()
	defer b.wmu.Unlock()
	switch {
	case b.closed:
		return broker.ErrClosed
	case s.epoch == 0:
		return fmt.Errorf("file broker: stream %s: PublishAt before Position", s.id)
	case b.epochs[s.id] != s.epoch:
		return ErrFenced
	case prev != s.st.Position:
		return fmt.Errorf("file broker: stream %s is at %d, not %d: %w", s.id, s.st.Position, prev, broker.ErrPositionMoved)
	}
	if err := b.writeLocked([][]event.Event{evs}); err != nil {
		return err
	}
	fi, err := b.f.Stat()
	if err != nil {
		return fmt.Errorf("file broker: %w", err)
	}
	st := positionState{Stream: s.id, Position: next, Offset: fi.Size()}
	data, _ := json.Marshal(st)
	if err := writeFileAtomic(b.positionPath(), append(data, '\n')); err != nil {
		return fmt.Errorf("file broker: record position in %s: %w", b.positionPath(), err)
	}
	s.st = st
	return nil
}

func (s *stream) Close(context.Context) error { return nil }

// writeFileAtomic replaces name with data: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
