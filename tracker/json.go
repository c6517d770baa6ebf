package tracker

import (
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/event"
)

// appendUJSON appends v as Rasa's HTTP API writes JSON: sanic's
// response.json is ujson.dumps with its defaults, so the output is compact,
// ASCII-only (\uXXXX, surrogate pairs for astral characters), escapes "/"
// as "\/", leaves DEL as is, and prints floats like Python's repr except
// that exponents have no leading zeros (1e-7, not 1e-07). Clients that
// compare responses byte for byte with Rasa's see the same bytes.
func appendUJSON(dst []byte, v event.Value) []byte {
	switch v.Kind() {
	case event.Null:
		return append(dst, "null"...)
	case event.Bool:
		if v.Bool() {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case event.Number:
		return appendUJSONNumber(dst, v.NumberText())
	case event.String:
		return appendUJSONString(dst, v.Str())
	case event.Array:
		dst = append(dst, '[')
		for i, e := range v.Elems() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendUJSON(dst, e)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i, m := range v.Members() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendUJSONString(dst, m.Key)
			dst = append(dst, ':')
			dst = appendUJSON(dst, m.Value)
		}
		return append(dst, '}')
	}
}

// appendUJSONNumber turns Python's repr ("1e-07", "1.5e+16") into ujson's
// ("1e-7", "1.5e+16"): the same digits, without the exponent's padding.
func appendUJSONNumber(dst []byte, s string) []byte {
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

const lowerHex = "0123456789abcdef"

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', lowerHex[r>>12&0xf], lowerHex[r>>8&0xf], lowerHex[r>>4&0xf], lowerHex[r&0xf])
}

func appendUJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '/' {
			i++
			continue
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
			// A lone surrogate kept from the input (WTF-8: ED A0..BF xx).
			if i+2 < len(s) && c == 0xed && s[i+1] >= 0xa0 && s[i+1] <= 0xbf && s[i+2]&0xc0 == 0x80 {
				dst = appendU4(dst, 0xd000|rune(s[i+1]&0x3f)<<6|rune(s[i+2]&0x3f))
				n = 3
				break
			}
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			if r >= 0x10000 {
				r -= 0x10000
				dst = appendU4(dst, 0xd800+(r>>10))
				dst = appendU4(dst, 0xdc00+(r&0x3ff))
			} else {
				dst = appendU4(dst, r)
			}
		}
		i += n
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
