package kafka

import (
	"fmt"
	"os"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// Record headers.
const (
	// HeaderRasaEnvironment carries $RASA_ENVIRONMENT, as Rasa sends it on
	// every record.
	HeaderRasaEnvironment = "RASA_ENVIRONMENT"
	// RasaEnvironmentNotSet is the header's value when the variable is
	// unset (Rasa's default). When it is set to the empty string there is
	// no header, as with Rasa.
	RasaEnvironmentNotSet = "RASA_ENVIRONMENT_NOT_SET"
	// HeaderEventID carries parley's event ID (broker.EventIDHeader).
	HeaderEventID = broker.EventIDHeader
)

// batchOverhead bounds what a record batch of one record adds to the
// record's key, value and headers (61 bytes of batch header, the record's
// varints and attributes), for the size check before producing.
const batchOverhead = 61 + 32

// rasaEnvironment returns the RASA_ENVIRONMENT header value and whether
// the header is sent, reading the environment as Rasa does (once, at
// start).
func rasaEnvironment() (string, bool) {
	v, ok := os.LookupEnv("RASA_ENVIRONMENT")
	if !ok {
		return RasaEnvironmentNotSet, true
	}
	return v, v != ""
}

// recordBuilder turns events into records. It is immutable after Open.
type recordBuilder struct {
	topic         string
	format        event.Format
	keyBySender   bool
	convertIntent bool
	env           []byte // RASA_ENVIRONMENT value, nil when no header
	maxBytes      int
}

// build makes one record per event. An event whose Rasa bytes are already
// known (as from the spool) lends them to its record without a copy; other
// values, keys and header values are copied into two allocations, which
// live until the last record is acknowledged. An event too large for a
// record batch fails the whole call, before anything is produced, with a
// permanent error naming it.
func (rb *recordBuilder) build(evs []event.Event) ([]kgo.Record, error) {
	lendValues := rb.format == event.FormatRasa && !rb.convertIntent
	nh, nsmall := 0, 0
	for i := range evs {
		ev := &evs[i]
		if rb.env != nil {
			nh++
		}
		if ev.ID != "" {
			nh++
			nsmall += len(ev.ID)
		}
		if rb.keyBySender {
			nsmall += len(ev.SenderID)
		}
		nh += len(ev.Headers)
		for _, v := range ev.Headers {
			nsmall += len(v)
		}
	}
	recs := make([]kgo.Record, len(evs))
	hdrs := make([]kgo.RecordHeader, 0, nh)
	// Sized exactly, so it never moves and slices of it stay valid.
	small := make([]byte, 0, nsmall)
	take := func(s string) []byte {
		start := len(small)
		small = append(small, s...)
		return small[start:len(small):len(small)]
	}
	var values []byte
	var ends []int
	if !lendValues {
		values = make([]byte, 0, 320*len(evs))
		ends = make([]int, len(evs))
	}
	var keys []string
	for i := range evs {
		ev, r := evs[i], &recs[i]
		r.Topic = rb.topic
		if lendValues {
			r.Value = ev.RasaJSON()
		} else {
			if rb.convertIntent {
				ev = convertIntentID(ev)
			}
			values = ev.AppendJSON(values, rb.format)
			ends[i] = len(values)
		}
		if rb.keyBySender {
			r.Key = take(ev.SenderID) // non-nil even when empty, as Rasa's b""
		}
		h0 := len(hdrs)
		if rb.env != nil {
			hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderRasaEnvironment, Value: rb.env})
		}
		if ev.ID != "" {
			hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderEventID, Value: take(ev.ID)})
		}
		if len(ev.Headers) > 0 {
			// Sorted, so that the same event always makes the same bytes.
			keys = keys[:0]
			for k := range ev.Headers {
				if k != HeaderRasaEnvironment && k != HeaderEventID {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: take(ev.Headers[k])})
			}
		}
		r.Headers = hdrs[h0:len(hdrs):len(hdrs)]
	}
	start := 0
	for i := range recs {
		r := &recs[i]
		if !lendValues {
			r.Value = values[start:ends[i]:ends[i]]
			start = ends[i]
		}
		size := len(r.Value) + len(r.Key) + batchOverhead
		for _, h := range r.Headers {
			size += len(h.Key) + len(h.Value) + 10
		}
		if size > rb.maxBytes {
			return nil, broker.Permanent(fmt.Errorf("kafka: event %d (id %q, sender %q) makes a %d-byte record, more than max_message_bytes (%d): %w",
				i, evs[i].ID, evs[i].SenderID, size, rb.maxBytes, ErrTooLarge))
		}
	}
	return recs, nil
}

// convertIntentID returns ev with parse_data.intent.id as a string when ev
// is a user event, as Rasa 2's convert_intent_id_to_string did with
// Python's str(): 123 becomes "123", 1.5e+18 becomes "1.5e+18", true
// "True", null "None". Other events, and ids that are already strings,
// are returned unchanged.
func convertIntentID(ev event.Event) event.Event {
	if ev.Type() != event.TypeUser {
		return ev
	}
	pd, ok := ev.Get("parse_data")
	if !ok || pd.Kind() != event.Object {
		return ev
	}
	intent, ok := pd.Get("intent")
	if !ok || intent.Kind() != event.Object {
		return ev
	}
	id, ok := intent.Get("id")
	if !ok {
		return ev
	}
	var s string
	switch id.Kind() {
	case event.Number:
		s = id.NumberText()
		switch s { // json.dumps spells these unlike str()
		case "NaN":
			s = "nan"
		case "Infinity":
			s = "inf"
		case "-Infinity":
			s = "-inf"
		}
	case event.Bool:
		s = "False"
		if id.Bool() {
			s = "True"
		}
	case event.Null:
		s = "None"
	default: // already a string; str() of a list or dict is left alone
		return ev
	}
	return ev.With("parse_data", pd.With("intent", intent.With("id", event.StringValue(s))))
}
