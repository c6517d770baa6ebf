package event

import (
	"errors"
	"fmt"
	"sync"
)

// Event is one Rasa tracker event addressed to a conversation.
//
// Its body is the event's JSON object as received, every key and value kept
// in order, minus the "sender_id" key, which lives in SenderID: Rasa
// publishes {"sender_id": id} updated with the event's dict, so the sender
// always comes first on the wire whatever its position in the input.
//
// An Event is a value: copies share the immutable body, and the With
// methods return modified copies.
type Event struct {
	// ID is parley's stable identifier for deduplication downstream
	// (Kafka header parley-event-id, AMQP message_id). It is not part of the
	// Rasa bytes. Empty until the event is accepted.
	ID string
	// SenderID is the conversation the event belongs to.
	SenderID string
	// Headers are transport headers that go with the event but not in its
	// JSON, such as rasa-export-process-id on exported events.
	Headers map[string]string

	body Value
	// senderLast puts sender_id after the body, as `rasa export` does
	// (event["sender_id"] = id on the event's dict).
	senderLast bool
	rasa       []byte // the Rasa bytes for rasaSender, when already known
	// rasaSender is the SenderID the cached bytes were made with.
	rasaSender string
	// lazy holds a body not parsed yet (FromRasaTrusted), shared by copies.
	lazy *lazyBody
}

type lazyBody struct {
	once       sync.Once
	data       []byte
	body       Value
	senderLast bool
}

// loaded returns e with its body parsed, if it was deferred.
func (e Event) loaded() Event {
	if l := e.lazy; l != nil {
		l.once.Do(func() {
			full, err := FromRasa("", l.data)
			if err != nil {
				l.body = Value{kind: Object, obj: []Member{}} // see FromRasaTrusted
				return
			}
			l.body, l.senderLast = full.body, full.senderLast
		})
		e.body, e.senderLast, e.lazy = l.body, l.senderLast, nil
	}
	return e
}

// ErrNotObject is returned for JSON that is not an object.
var ErrNotObject = errors.New("an event must be a JSON object")

// Parse parses one event from a JSON object. It checks only the syntax, the
// object shape and the type of sender_id; use Validate for the rest.
func Parse(data []byte) (Event, error) {
	v, err := ParseValue(data)
	if err != nil {
		return Event{}, err
	}
	return FromValue(v)
}

// FromValue makes an Event from a JSON object, moving a "sender_id" string
// out of the body into SenderID.
func FromValue(v Value) (Event, error) {
	if v.kind != Object {
		return Event{}, fmt.Errorf("%w, got %s", ErrNotObject, v.kind)
	}
	ev := Event{body: v}
	if s, ok := v.Get("sender_id"); ok {
		if s.kind != String {
			return Event{}, &FieldError{Field: "sender_id", Msg: "must be a string, got " + s.kind.String()}
		}
		ev.SenderID = s.s
		if v.obj[0].Key == "sender_id" {
			ev.body = Value{kind: Object, obj: v.obj[1:]} // the usual layout: no copy
		} else {
			ev.body = v.Without("sender_id")
		}
	}
	return ev, nil
}

// FromRasa rebuilds an event from the Rasa bytes it was published as (what
// the spool and the SQL broker store). The bytes are kept, so publishing it
// again does not re-encode.
func FromRasa(id string, data []byte) (Event, error) {
	v, err := ParseValue(data)
	if err != nil {
		return Event{}, err
	}
	ev, err := FromValue(v)
	if err != nil {
		return Event{}, err
	}
	ev.ID = id
	ev.rasa, ev.rasaSender = data, ev.SenderID
	// rasa export appends sender_id instead of putting it first.
	if n := len(v.obj); n > 1 && v.obj[n-1].Key == "sender_id" {
		ev.senderLast = true
	}
	return ev, nil
}

// FromRasaTrusted is FromRasa for bytes parley itself wrote and checked
// (the spool's records, checksummed): it keeps the bytes and parses the
// body only if something reads it, so republishing costs no parse. Bytes
// that turn out not to parse give an empty body.
func FromRasaTrusted(id, senderID string, data []byte) Event {
	return Event{ID: id, SenderID: senderID, rasa: data, rasaSender: senderID, lazy: &lazyBody{data: data}}
}

// Exported returns e as `rasa export` publishes it: sender_id after the
// other keys instead of first.
func (e Event) Exported() Event {
	e = e.loaded()
	if !e.senderLast {
		e.senderLast = true
		e.rasa, e.rasaSender = nil, ""
	}
	return e
}

// New makes an event for senderID from a body object, which should not
// contain sender_id (it is dropped if it does).
func New(senderID string, body Value) (Event, error) {
	ev, err := FromValue(body)
	if err != nil {
		return Event{}, err
	}
	ev.SenderID = senderID
	return ev, nil
}

// Body returns the event's JSON object without sender_id.
func (e Event) Body() Value { return e.loaded().body }

// Type returns the "event" field, the Rasa type name ("user", "bot", ...).
func (e Event) Type() string {
	v, _ := e.loaded().body.Get("event")
	return v.Str()
}

// Timestamp returns the "timestamp" field in Unix seconds and whether it is
// a number.
func (e Event) Timestamp() (float64, bool) {
	v, ok := e.loaded().body.Get("timestamp")
	if !ok {
		return 0, false
	}
	return v.Float()
}

// Get returns a field of the body.
func (e Event) Get(key string) (Value, bool) { return e.loaded().body.Get(key) }

// With returns a copy of e with a body field set (an existing key keeps its
// place). Setting "sender_id" sets SenderID instead.
func (e Event) With(key string, val Value) Event {
	if key == "sender_id" {
		e.SenderID = val.Str()
		return e
	}
	e = e.loaded()
	e.body = e.body.With(key, val)
	e.rasa, e.rasaSender = nil, ""
	return e
}

// Value returns the event as Rasa publishes it: sender_id first, then the
// body.
func (e Event) Value() Value {
	e = e.loaded()
	ms := make([]Member, 0, len(e.body.obj)+1)
	sender := Member{Key: "sender_id", Value: StringValue(e.SenderID)}
	if !e.senderLast {
		ms = append(ms, sender)
	}
	ms = append(ms, e.body.obj...)
	if e.senderLast {
		ms = append(ms, sender)
	}
	return Value{kind: Object, obj: ms}
}

// AppendJSON appends the published form of e, {"sender_id": ..., <body>},
// in format f.
func (e Event) AppendJSON(dst []byte, f Format) []byte {
	if f == FormatRasa && e.rasa != nil && e.rasaSender == e.SenderID {
		return append(dst, e.rasa...)
	}
	e = e.loaded()
	if e.senderLast {
		return e.Value().AppendJSON(dst, f)
	}
	dst = append(dst, '{')
	dst = appendMember(dst, "sender_id", StringValue(e.SenderID), f)
	for _, m := range e.body.obj {
		dst = appendComma(dst, f)
		dst = appendMember(dst, m.Key, m.Value, f)
	}
	return append(dst, '}')
}

// RasaJSON returns the exact bytes Rasa would publish for e.
func (e Event) RasaJSON() []byte {
	if e.rasa != nil && e.rasaSender == e.SenderID {
		return e.rasa
	}
	return e.AppendJSON(make([]byte, 0, 256), FormatRasa)
}

// MarshalJSON encodes the published form compactly.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil, FormatCompact), nil }
