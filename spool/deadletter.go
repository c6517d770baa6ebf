package spool

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DeadLetter is one line of a broker's dead-letter file: an event the
// broker rejected permanently (broker.ErrPermanent, e.g. larger than the
// destination accepts), with the error, so an operator can fix the cause
// and replay it (the event field is what `parley publish` reads).
type DeadLetter struct {
	Time     time.Time         `json:"time"`
	Broker   string            `json:"broker"`
	Seq      uint64            `json:"seq"`
	EventID  string            `json:"event_id"`
	SenderID string            `json:"sender_id"`
	Error    string            `json:"error"`
	Headers  map[string]string `json:"headers,omitempty"`
	// Event is the event's Rasa bytes, as they are; EventRaw holds them
	// instead when they are not valid JSON.
	Event    json.RawMessage `json:"event,omitempty"`
	EventRaw string          `json:"event_raw,omitempty"`
}

// DeadLetterPath returns the dead-letter file of a broker in the spool
// directory dir: deadletter/<broker>.ndjson, one JSON DeadLetter a line.
func DeadLetterPath(dir, brokerName string) string {
	return filepath.Join(dir, "deadletter", safeName(brokerName)+".ndjson")
}

// safeName keeps a broker name (type plus "#n") usable as a file name.
func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '#':
			return r
		}
		return '_'
	}, name)
}

// ReadDeadLetters reads a dead-letter file; a missing file has none.
func ReadDeadLetters(path string) ([]DeadLetter, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []DeadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxRecordSize*2)
	for line := 1; sc.Scan(); line++ {
		var d DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return out, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, d)
	}
	return out, sc.Err()
}

// deadLetters appends to one broker's dead-letter file, opened on first
// use.
type deadLetters struct {
	s      *Spool
	broker string
	path   string

	mu  sync.Mutex
	f   file
	off int64
}

func newDeadLetters(s *Spool, brokerName string) *deadLetters {
	return &deadLetters{s: s, broker: brokerName, path: DeadLetterPath(s.dir, brokerName)}
}

// write appends one entry and makes it durable per the fsync policy. A
// failed write is truncated away so the file stays one entry a line.
func (d *deadLetters) write(rec *record, cause error) error {
	entry := DeadLetter{
		Time: time.Now().UTC(), Broker: d.broker, Seq: rec.seq, EventID: rec.id, SenderID: rec.sender,
		Error: cause.Error(), Headers: rec.headers,
	}
	rasa := rec.rasa
	if d.s.dlRewrite != nil {
		rasa, entry.Error = d.s.dlRewrite(d.broker, rec.event(), entry.Error)
	}
	valid := json.Valid(rasa)
	if !valid {
		entry.EventRaw = string(rasa)
	}
	line, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	if valid {
		// Splice the bytes in as they are: json.Marshal would compact and
		// HTML-escape a RawMessage, and a replay should publish Rasa's
		// exact bytes.
		raw := rasa
		if bytes.ContainsAny(raw, "\r\n") {
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return err
			}
			raw = b.Bytes()
		}
		line = append(append(append(line[:len(line)-1], `,"event":`...), raw...), '}')
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if err := d.open(); err != nil {
			return err
		}
	}
	if _, err := d.f.WriteAt(line, d.off); err != nil {
		_ = d.f.Truncate(d.off)
		return err
	}
	if d.s.cfg.Fsync != FsyncNever {
		if err := d.f.Sync(); err != nil {
			_ = d.f.Truncate(d.off)
			return err
		}
	}
	d.off += int64(len(line))
	return nil
}

func (d *deadLetters) open() error {
	dir := filepath.Dir(d.path)
	if err := d.s.fsys.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := d.s.fsys.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if d.s.cfg.Fsync != FsyncNever {
		if err := syncDir(d.s.fsys, dir); err != nil {
			f.Close()
			return err
		}
	}
	// A crash mid-write leaves a partial last line, whose event was not
	// passed yet and will be written again: drop it.
	off, err := lastLineEnd(f, info.Size())
	if err != nil {
		f.Close()
		return err
	}
	if off < info.Size() {
		if err := f.Truncate(off); err != nil {
			f.Close()
			return err
		}
	}
	d.f, d.off = f, off
	return nil
}

// lastLineEnd returns the offset after the last newline of a file of size
// bytes (0 if it has none).
func lastLineEnd(f file, size int64) (int64, error) {
	buf := make([]byte, 4096)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

func (d *deadLetters) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}
