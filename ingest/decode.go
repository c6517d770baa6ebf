package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/parleyhq/parley/event"
)

// LineError is a bad line of NDJSON input.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// IndexError is a bad element of a JSON array body.
type IndexError struct {
	Index int // 0-based, as in the array
	Err   error
}

func (e *IndexError) Error() string { return fmt.Sprintf("index %d: %v", e.Index, e.Err) }
func (e *IndexError) Unwrap() error { return e.Err }

// ErrEmpty is returned for input without events.
var ErrEmpty = errors.New("no events in the input")

// Prepare validates an event for publishing and gives it an ID. If
// senderID is set it replaces the event's own.
func Prepare(ev event.Event, senderID string) (event.Event, error) {
	if senderID != "" {
		ev.SenderID = senderID
	}
	if err := ev.ValidateForPublish(); err != nil {
		return ev, err
	}
	if ev.ID == "" {
		ev.ID = event.NewID()
	}
	return ev, nil
}

// Reader reads events from NDJSON, one object per line; blank lines are
// skipped. Lines may be of any length.
type Reader struct {
	r *bufio.Reader
	// SenderID, if set, replaces every event's sender_id.
	SenderID string
	// Canonical re-serializes each event as Rasa's event class does (see
	// Canonical). Default false: events are published as given.
	Canonical bool
	line      int
}

// NewReader reads NDJSON from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Line returns the number of the line read last.
func (r *Reader) Line() int { return r.line }

// Next returns the next event, io.EOF at the end, or a *LineError.
func (r *Reader) Next() (event.Event, error) {
	for {
		raw, err := r.r.ReadBytes('\n')
		if len(raw) == 0 && err != nil {
			if err == io.EOF {
				return event.Event{}, io.EOF
			}
			return event.Event{}, fmt.Errorf("read line %d: %w", r.line+1, err)
		}
		r.line++
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			if err == io.EOF {
				return event.Event{}, io.EOF
			}
			continue
		}
		ev, err := parseLine(line, r.line, r.SenderID)
		if err == nil && r.Canonical {
			if ev, err = Canonical(ev); err != nil {
				err = &LineError{Line: r.line, Err: err}
			}
		}
		return ev, err
	}
}

// parseLine parses and prepares the event of NDJSON line number n, a
// trimmed line that is not empty.
func parseLine(line []byte, n int, senderID string) (event.Event, error) {
	ev, err := event.Parse(line)
	if err == nil {
		ev, err = Prepare(ev, senderID)
	}
	if err != nil {
		return event.Event{}, &LineError{Line: n, Err: err}
	}
	return ev, nil
}

// DecodeBody decodes an HTTP body holding a JSON array of events, one
// event object, or NDJSON. It is all or nothing: the first bad event fails
// the whole body, with a *IndexError or *LineError.
func DecodeBody(body []byte, senderID string) ([]event.Event, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, ErrEmpty
	}
	if trimmed[0] != '[' {
		// NDJSON, line by line over the body itself: no reader, no copy.
		var evs []event.Event
		for line, rest := 1, body; len(rest) > 0; line++ {
			raw := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				raw, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			raw = bytes.TrimSpace(raw)
			if len(raw) == 0 {
				continue
			}
			ev, err := parseLine(raw, line, senderID)
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
		if len(evs) == 0 {
			return nil, ErrEmpty
		}
		return evs, nil
	}
	v, err := event.ParseValue(body)
	if err != nil {
		return nil, err
	}
	evs := make([]event.Event, 0, v.Len())
	for i, el := range v.Elems() {
		ev, err := event.FromValue(el)
		if err == nil {
			ev, err = Prepare(ev, senderID)
		}
		if err != nil {
			return nil, &IndexError{Index: i, Err: err}
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return nil, ErrEmpty
	}
	return evs, nil
}
