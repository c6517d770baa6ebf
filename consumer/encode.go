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

// appendRecords appends the JSON array of recs.
func appendRecords(dst []byte, recs []Record, binary bool) []byte {
	dst = append(dst, '[')
	for i := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendRecord(dst, &recs[i], binary, false)
	}
	return append(dst, ']')
}

// appendRecord appends one record object:
//
//	{"topic":..,"key":..,"value":..,"partition":..,"offset":..,"timestamp":..,"headers":{..}}
//
// value is the event's JSON itself, or, with binary (Confluent's format),
// the base64 of its bytes. oneLine makes sure the JSON holds no line
// break, for an SSE data line.
func appendRecord(dst []byte, r *Record, binary, oneLine bool) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst, `,"key":`...)
	dst = appendBytes(dst, r.Key, binary)
	dst = append(dst, `,"value":`...)
	switch {
	case binary:
		dst = appendBase64(dst, r.Value)
	case r.Value == nil:
		dst = append(dst, "null"...)
	case validJSON(r.Value):
		if oneLine && (bytes.IndexByte(r.Value, '\n') >= 0 || bytes.IndexByte(r.Value, '\r') >= 0) {
			var buf bytes.Buffer
			_ = json.Compact(&buf, r.Value) // valid, so it cannot fail
			dst = append(dst, buf.Bytes()...)
		} else {
			dst = append(dst, r.Value...)
		}
	default:
		// Not JSON (written by another producer): a string, so that the
		// response stays JSON.
		dst = appendBytes(dst, r.Value, false)
	}
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
