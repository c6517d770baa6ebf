package sqlsrc

import (
	"strconv"
)

// topLevelNumber returns the number stored under key in the JSON object
// data, without decoding the rest: the records timestamp is the event's
// timestamp field, and decoding every event to find it would cost more
// than the rest of a read. Nested objects are skipped, so a "timestamp"
// inside metadata is not taken for the event's.
func topLevelNumber(data []byte, key string) (float64, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return 0, false
	}
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return 0, false
		}
		kStart := i + 1
		i = skipString(data, i)
		if i < 0 {
			return 0, false
		}
		k := data[kStart : i-1]
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return 0, false
		}
		i = skipSpace(data, i+1)
		vStart := i
		i = skipValue(data, i)
		if i < 0 {
			return 0, false
		}
		if string(k) == key {
			f, err := strconv.ParseFloat(string(data[vStart:i]), 64)
			return f, err == nil
		}
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ',' {
			return 0, false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"'),
// or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or
// -1. It trusts the data is JSON (it was written by a broker).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
		i++
	}
	return i
}
