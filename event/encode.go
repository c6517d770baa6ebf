package event

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format selects how values are serialized.
type Format uint8

const (
	// FormatRasa is what Rasa publishes: Python's json.dumps with its
	// defaults, separators ", " and ": " and every non-ASCII character
	// escaped as \uXXXX.
	FormatRasa Format = iota
	// FormatCompact is json.dumps with separators "," and ":" and UTF-8 left
	// as is (ensure_ascii=False): smaller, and still the same JSON values.
	FormatCompact
	// FormatUJSON is what Rasa's HTTP API writes (sanic's response.json is
	// ujson.dumps with its defaults): compact, ASCII-only, "/" escaped as
	// "\/", DEL left as is, and floats as Python's repr but with
	// unpadded exponents (1e-7, not 1e-07).
	FormatUJSON
)

// ParseFormat maps the endpoints.yml spelling ("rasa", "compact") to a Format.
func ParseFormat(s string) (Format, bool) {
	switch s {
	case "", "rasa":
		return FormatRasa, true
	case "compact":
		return FormatCompact, true
	}
	return 0, false
}

func (f Format) String() string {
	switch f {
	case FormatCompact:
		return "compact"
	case FormatUJSON:
		return "ujson"
	}
	return "rasa"
}

// AppendJSON appends v to dst in format f.
func (v Value) AppendJSON(dst []byte, f Format) []byte {
	switch v.kind {
	case Null:
		return append(dst, "null"...)
	case Bool:
		if v.b {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		if f == FormatUJSON {
			return appendUnpaddedExponent(dst, v.s)
		}
		return append(dst, v.s...)
	case String:
		return appendString(dst, v.s, f)
	case Array:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = appendComma(dst, f)
			}
			dst = e.AppendJSON(dst, f)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i, m := range v.obj {
			if i > 0 {
				dst = appendComma(dst, f)
			}
			dst = appendMember(dst, m.Key, m.Value, f)
		}
		return append(dst, '}')
	}
}

// MarshalJSON encodes v compactly, for encoding/json callers.
func (v Value) MarshalJSON() ([]byte, error) { return v.AppendJSON(nil, FormatCompact), nil }

// UnmarshalJSON parses data into v.
func (v *Value) UnmarshalJSON(data []byte) error {
	val, err := ParseValue(data)
	if err != nil {
		return err
	}
	*v = val
	return nil
}

func appendComma(dst []byte, f Format) []byte {
	if f == FormatRasa {
		return append(dst, ", "...)
	}
	return append(dst, ',')
}

func appendMember(dst []byte, key string, val Value, f Format) []byte {
	dst = appendString(dst, key, f)
	if f == FormatRasa {
		dst = append(dst, ": "...)
	} else {
		dst = append(dst, ':')
	}
	return val.AppendJSON(dst, f)
}

const hexDigits = "0123456789abcdef"

// appendString writes s quoted the way Python's json encoder does: \" \\
// \b \f \n \r \t, other control characters (and, in Rasa format, DEL and
// all non-ASCII) as lowercase \uXXXX, astral characters as surrogate pairs.
// FormatUJSON escapes like Rasa format but for "/" (as "\/") and DEL (raw).
func appendString(dst []byte, s string, f Format) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && (c != '/' || f != FormatUJSON) {
			i++
			continue
		}
		if c == 0x7f && f != FormatRasa {
			i++ // DEL is not escaped by json with ensure_ascii=False, nor by ujson
			continue
		}
		if c >= 0x80 && f == FormatCompact {
			if _, ok := surrogateAt(s, i); !ok {
				i++ // UTF-8 stays as it is in compact output
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		n := 1
		switch c {
		case '"', '\\', '/':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			if c < 0x80 {
				dst = appendU4(dst, rune(c))
				break
			}
			if r, ok := surrogateAt(s, i); ok {
				dst, n = appendU4(dst, r), 3
				break
			}
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			if r >= 0x10000 {
				r -= 0x10000
				dst = appendU4(dst, 0xd800+(r>>10))
				dst = appendU4(dst, 0xdc00+(r&0x3ff))
			} else {
				dst = appendU4(dst, r) // includes U+FFFD for invalid bytes, as Go strings can hold them
			}
		}
		i += n
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendUnpaddedExponent writes a number in Python's repr ("1e-07",
// "1.5e+16") the way ujson prints it: the same digits, without the
// exponent's leading zeros ("1e-7").
func appendUnpaddedExponent(dst []byte, s string) []byte {
	i := strings.IndexAny(s, "eE")
	if i < 0 || i+2 >= len(s) {
		return append(dst, s...)
	}
	dst = append(dst, s[:i+1]...)
	j := i + 1
	if s[j] == '+' || s[j] == '-' {
		dst = append(dst, s[j])
		j++
	}
	for j < len(s)-1 && s[j] == '0' {
		j++
	}
	return append(dst, s[j:]...)
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// appendPyFloat appends f as Python's repr(float) prints it: the shortest
// digits that round-trip, in fixed notation when the decimal exponent is in
// (-4, 16] (always with a fractional part: "1.0"), else scientific with a
// signed exponent of at least two digits ("1e-05", "1.5e+16").
func appendPyFloat(dst []byte, f float64) []byte {
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±dd
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	e := 0
	for s[e] != 'e' {
		e++
	}
	exp, _ := strconv.Atoi(string(s[e+1:]))
	var dbuf [24]byte
	digits := append(dbuf[:0], s[0])
	if e > 1 {
		digits = append(digits, s[2:e]...)
	}
	if f == 0 {
		return append(dst, "0.0"...)
	}
	decpt := exp + 1 // position of the decimal point relative to digits
	switch {
	case decpt > -4 && decpt <= 16:
		switch {
		case decpt <= 0:
			dst = append(dst, '0', '.')
			for i := 0; i < -decpt; i++ {
				dst = append(dst, '0')
			}
			dst = append(dst, digits...)
		case decpt >= len(digits):
			dst = append(dst, digits...)
			for i := len(digits); i < decpt; i++ {
				dst = append(dst, '0')
			}
			dst = append(dst, '.', '0')
		default:
			dst = append(dst, digits[:decpt]...)
			dst = append(dst, '.')
			dst = append(dst, digits[decpt:]...)
		}
		return dst
	default:
		dst = append(dst, digits[0])
		if len(digits) > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
}
