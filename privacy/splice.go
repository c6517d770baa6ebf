package privacy

import (
	"errors"

	"github.com/parleyhq/parley/event"
)

var errMalformed = errors.New("privacy: event bytes are not a JSON object")

// splice returns raw, a JSON object, with the values of the top-level keys
// in changed replaced by their Rasa encoding. Every other byte is kept, so
// fields nobody anonymized are exactly as they were published.
func splice(raw []byte, changed map[string]event.Value) ([]byte, error) {
	out := make([]byte, 0, len(raw)+64)
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, errMalformed
	}
	i++
	last := 0
	for {
		i = skipWS(raw, i)
		if i >= len(raw) {
			return nil, errMalformed
		}
		if raw[i] == '}' {
			break
		}
		if raw[i] == ',' {
			i = skipWS(raw, i+1)
		}
		ks := i
		ke, err := skipString(raw, i)
		if err != nil {
			return nil, err
		}
		key, err := decodeKey(raw[ks:ke])
		if err != nil {
			return nil, err
		}
		i = skipWS(raw, ke)
		if i >= len(raw) || raw[i] != ':' {
			return nil, errMalformed
		}
		vs := skipWS(raw, i+1)
		ve, err := skipValue(raw, vs)
		if err != nil {
			return nil, err
		}
		if nv, ok := changed[key]; ok {
			out = append(out, raw[last:vs]...)
			out = nv.AppendJSON(out, event.FormatRasa)
			last = ve
		}
		i = ve
	}
	return append(out, raw[last:]...), nil
}

func decodeKey(b []byte) (string, error) {
	for _, c := range b {
		if c == '\\' {
			v, err := event.ParseValue(b)
			if err != nil {
				return "", err
			}
			return v.Str(), nil
		}
	}
	return string(b[1 : len(b)-1]), nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errMalformed
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errMalformed
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errMalformed
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				e, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errMalformed
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, nil
		}
	}
	return i, nil
}
