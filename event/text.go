package event

import (
	"strconv"
	"unicode/utf8"
)

// Every string that enters parley (event fields and keys, sender ids,
// conversation ids in paths, ids in headers) must be valid UTF-8: Rasa's
// SQL stores, PostgreSQL and Python's sqlite3 cannot read anything else.
// The parser refuses raw invalid bytes; a JSON escape of a lone UTF-16
// surrogate ("\udc00") decodes to something no UTF-8 reader accepts, and
// is refused here. (Python's json keeps such a surrogate and writes it
// back escaped; parley refuses it instead.)

// ValidText returns a *FieldError naming field when s is not valid UTF-8
// (a lone surrogate included), else nil.
func ValidText(field, s string) error {
	if utf8.ValidString(s) {
		return nil
	}
	return &FieldError{Field: field, Msg: invalidTextMsg(s)}
}

func invalidTextMsg(s string) string {
	if i, ok := firstSurrogate(s); ok {
		return "contains a lone UTF-16 surrogate (" + surrogateText(s, i) + "), which is not valid Unicode text"
	}
	return "is not valid UTF-8"
}

// firstSurrogate returns the index of the first WTF-8 encoded surrogate
// of s, the parser's encoding of an escaped lone surrogate.
func firstSurrogate(s string) (int, bool) {
	for i := 0; i < len(s); i++ {
		if _, ok := surrogateAt(s, i); ok {
			return i, true
		}
	}
	return 0, false
}

func surrogateText(s string, i int) string {
	r, _ := surrogateAt(s, i)
	return `\u` + strconv.FormatInt(int64(r), 16)
}

// checkText walks v and reports every string and key that is not valid
// UTF-8, with its path ("parse_data.entities[0].value").
func checkText(path string, v Value, add func(field, msg string)) {
	switch v.kind {
	case String:
		if !utf8.ValidString(v.s) {
			add(path, invalidTextMsg(v.s))
		}
	case Array:
		for i, e := range v.arr {
			checkText(path+"["+strconv.Itoa(i)+"]", e, add)
		}
	case Object:
		for _, m := range v.obj {
			p := m.Key
			if !utf8.ValidString(m.Key) {
				p = `"` + displayText(m.Key) + `"`
				add(joinPath(path, p), "key "+invalidTextMsg(m.Key))
			}
			checkText(joinPath(path, p), m.Value, add)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// displayText writes s for an error message: lone surrogates as \uXXXX,
// other invalid bytes as \xNN, the rest as is.
func displayText(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		if r, ok := surrogateAt(s, i); ok {
			b = append(b, `\u`+strconv.FormatInt(int64(r), 16)...)
			i += 3
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\x`+strconv.FormatUint(uint64(s[i]), 16)...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}
