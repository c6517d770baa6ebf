package consumer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The records body is written by hand: it is the API's hot path, and
// embedding each event's JSON as it is stored (no decode, no re-encode)
// keeps Rasa's bytes and saves most of the cost.

// recordsFormat is the shape of a records response.
type recordsFormat struct {
	binary    bool // values (and keys) as base64: Confluent's binary format
	valueOnly bool // ?data=value: each record's value alone
	ndjson    bool // one per line (Accept: application/x-ndjson), not an array
}

// appendRecords appends recs as the JSON array of records, or what f
// asks for instead.
func appendRecords(dst []byte, recs []Record, f recordsFormat) []byte {
	if !f.ndjson {
		dst = append(dst, '[')
	}
	for i := range recs {
		if i > 0 && !f.ndjson {
			dst = append(dst, ',')
		}
		if f.valueOnly {
			dst = appendValue(dst, recs[i].Value, f.binary, f.ndjson)
		} else {
			dst = appendRecord(dst, &recs[i], f.binary, f.ndjson)
		}
		if f.ndjson {
			dst = append(dst, '\n')
		}
	}
	if !f.ndjson {
		dst = append(dst, ']')
	}
	return dst
}

// appendRecord appends one record object:
//
//	{"topic":..,"key":..,"value":..,"partition":..,"offset":..,"timestamp":..,"headers":{..}}
//
// value, binary and oneLine are appendValue's.
func appendRecord(dst []byte, r *Record, binary, oneLine bool) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst, `,"key":`...)
	dst = appendBytes(dst, r.Key, binary)
	dst = append(dst, `,"value":`...)
	dst = appendValue(dst, r.Value, binary, oneLine)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	if r.Timestamp.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	}
	dst = append(dst, `,"headers":{`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, h.Key)
		dst = append(dst, ':')
		dst = appendBytes(dst, h.Value, false)
	}
	return append(dst, "}}"...)
}

// appendValue appends a record's value: the event's JSON itself, or, with
// binary (Confluent's format), the base64 of its bytes. oneLine makes sure
// the JSON holds no line break, for an SSE data line or an NDJSON line.
func appendValue(dst, v []byte, binary, oneLine bool) []byte {
	switch {
	case binary:
		return appendBase64(dst, v)
	case v == nil:
		return append(dst, "null"...)
	case validJSON(v):
		if oneLine && (bytes.IndexByte(v, '\n') >= 0 || bytes.IndexByte(v, '\r') >= 0) {
			var buf bytes.Buffer
			_ = json.Compact(&buf, v) // valid, so it cannot fail
			return append(dst, buf.Bytes()...)
		}
		return append(dst, v...)
	}
	// Not JSON (written by another producer): a string, so that the
	// response stays JSON.
	return appendBytes(dst, v, false)
}

// appendBytes appends b as a JSON string: its text when it is UTF-8, else
// (or with binary) its base64; nil is null.
func appendBytes(dst, b []byte, binary bool) []byte {
	switch {
	case b == nil:
		return append(dst, "null"...)
	case binary || !utf8.Valid(b):
		return appendBase64(dst, b)
	}
	return appendString(dst, b)
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. s is valid UTF-8 (callers
// check), so only quotes, backslashes and control characters need
// escaping.
func appendString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
