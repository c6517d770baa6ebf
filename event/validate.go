package event

import (
	"math"
	"strings"
)

// FieldError says what is wrong with one field of an event.
type FieldError struct {
	Field string // JSON key, e.g. "timestamp" or "parse_data"
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists every problem found in one event.
type ValidationError []*FieldError

func (e ValidationError) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// Validate checks what every broker and Rasa's own event classes rely on:
// an "event" string, a numeric, finite "timestamp" if any, an object or null
// "metadata", and the JSON types of the fields Rasa reads for known event
// types. Unknown types and unknown fields are fine. It returns a
// ValidationError or nil.
func (e Event) Validate() error {
	e = e.loaded()
	var errs ValidationError
	add := func(field, msg string) { errs = append(errs, &FieldError{Field: field, Msg: msg}) }

	t, ok := e.body.Get("event")
	switch {
	case !ok:
		add("event", "is missing")
	case t.kind != String:
		add("event", "must be a string, got "+t.kind.String())
	case t.s == "":
		add("event", "must not be empty")
	}
	// A missing or null timestamp is published as given, as Rasa's brokers
	// publish the dict they are handed; Canonical (Rasa's Event class)
	// sets it to now.
	ts, ok := e.body.Get("timestamp")
	switch {
	case !ok || ts.kind == Null:
	case ts.kind != Number:
		add("timestamp", "must be a number (Unix seconds), got "+ts.kind.String())
	default:
		if f, _ := ts.Float(); math.IsInf(f, 0) || f < MinTimestamp || f > MaxTimestamp {
			add("timestamp", "must be Unix seconds between -62135596800 and 253402300799 (years 1 to 9999, which every broker, Rasa and the consumer API can represent), got "+ts.s)
		}
	}
	if md, ok := e.body.Get("metadata"); ok && md.kind != Object && md.kind != Null {
		add("metadata", "must be an object, got "+md.kind.String())
	}
	checkText("", e.body, add)
	for _, spec := range typeSpecs[t.Str()] {
		v, ok := e.body.Get(spec.name)
		switch {
		case !ok && spec.required:
			add(spec.name, "is missing (required for "+t.s+" events)")
		case ok && !spec.kinds.has(v.kind):
			add(spec.name, "must be "+spec.kinds.String()+" in a "+t.s+" event, got "+v.kind.String())
		}
	}
	if errs == nil {
		return nil
	}
	return errs
}

// The range of an event's timestamp: years 1 to 9999 (Python's datetime,
// RFC 3339), whose milliseconds fit the int64 of Kafka records and of the
// consumer API's record timestamps.
const (
	MinTimestamp = -62135596800 // 0001-01-01T00:00:00Z
	MaxTimestamp = 253402300799 // 9999-12-31T23:59:59Z
)

// ValidateForPublish is Validate plus a non-empty SenderID in valid UTF-8,
// which every published event carries.
func (e Event) ValidateForPublish() error {
	err := e.Validate()
	var errs ValidationError
	switch {
	case e.SenderID == "":
		errs = append(errs, &FieldError{Field: "sender_id", Msg: "is missing (every published event needs its conversation id)"})
	case ValidText("sender_id", e.SenderID) != nil:
		errs = append(errs, ValidText("sender_id", e.SenderID).(*FieldError))
	default:
		return err
	}
	if ve, ok := err.(ValidationError); ok {
		errs = append(errs, ve...)
	}
	return errs
}
