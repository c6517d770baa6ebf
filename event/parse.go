package event

import (
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth bounds the nesting of arrays and objects, as Python's recursion
// limit bounds json.loads.
const MaxDepth = 1000

// maxIntDigits is CPython's default int_max_str_digits: json.loads refuses
// longer integers, so Rasa could never have published one.
const maxIntDigits = 4300

// SyntaxError reports malformed JSON.
type SyntaxError struct {
	Offset int // byte offset of the problem
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// ParseValue parses one JSON document. It accepts what Python's json.loads
// accepts, except NaN, Infinity and numbers that overflow a float64, which
// are not JSON and which Rasa would republish as invalid JSON.
func ParseValue(data []byte) (Value, error) {
	p := parsers.Get().(*parser)
	defer p.release()
	p.data, p.pos, p.depth = data, 0, 0
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return Value{}, p.errorf("unexpected %s after the value", p.describe())
	}
	return v, nil
}

// parsers recycles parsers for their scratch stacks.
var parsers = sync.Pool{New: func() any { return new(parser) }}

func (p *parser) release() {
	if cap(p.members) > 4096 || cap(p.elems) > 4096 {
		return // a huge document's stacks are not worth keeping
	}
	clear(p.members[:cap(p.members)])
	clear(p.elems[:cap(p.elems)])
	p.members, p.elems, p.data = p.members[:0], p.elems[:0], nil
	parsers.Put(p)
}

type parser struct {
	data  []byte
	pos   int
	depth int
	// Members and elements being parsed, shared by all nesting levels; each
	// finished container copies its part out into an exactly sized slice,
	// so a container costs one allocation instead of a growing append.
	members []Member
	elems   []Value
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

// describe names the input at the current position for error messages.
func (p *parser) describe() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	c := p.data[p.pos]
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (Value, error) {
	if p.pos >= len(p.data) {
		return Value{}, p.errorf("unexpected end of input, expecting a value")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		return Value{kind: String, s: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return Value{kind: Bool, b: true}, p.literal("true")
	case c == 'f':
		return Value{kind: Bool}, p.literal("false")
	case c == 'n':
		return Value{}, p.literal("null")
	case c == 'N' || c == 'I':
		return Value{}, p.errorf("NaN and Infinity are not JSON")
	default:
		return Value{}, p.errorf("unexpected %s, expecting a value", p.describe())
	}
}

func (p *parser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("unexpected %s, expecting %q", p.describe(), word)
	}
	p.pos += len(word)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errorf("nesting deeper than %d", MaxDepth)
	}
	p.pos++
	p.skipSpace()
	return nil
}

func (p *parser) object() (Value, error) {
	if err := p.enter(); err != nil {
		return Value{}, err
	}
	defer func() { p.depth-- }()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return Value{kind: Object, obj: []Member{}}, nil
	}
	base := len(p.members)
	var index map[string]int // built only for large objects, against quadratic duplicate checks
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.errorf("unexpected %s, expecting a key string", p.describe())
		}
		key, err := p.key()
		if err != nil {
			return Value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.errorf("unexpected %s, expecting ':' after key %q", p.describe(), key)
		}
		p.pos++
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return Value{}, err
		}
		index = p.addMember(base, index, key, val)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errorf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case '}':
			p.pos++
			ms := make([]Member, len(p.members)-base)
			copy(ms, p.members[base:])
			clear(p.members[base:]) // drop references for the GC
			p.members = p.members[:base]
			return Value{kind: Object, obj: ms}, nil
		default:
			return Value{}, p.errorf("unexpected %s, expecting ',' or '}'", p.describe())
		}
	}
}

// addMember appends key to the object being parsed (from base), or
// overwrites its value in place if it repeats, which is what a Python dict
// does with duplicate JSON keys.
func (p *parser) addMember(base int, index map[string]int, key string, val Value) map[string]int {
	ms := p.members[base:]
	if index == nil && len(ms) >= 16 {
		index = make(map[string]int, 2*len(ms))
		for i, m := range ms {
			index[m.Key] = i
		}
	}
	if index != nil {
		if i, ok := index[key]; ok {
			ms[i].Value = val
			return index
		}
		index[key] = len(ms)
	} else {
		for i := range ms {
			if ms[i].Key == key {
				ms[i].Value = val
				return nil
			}
		}
	}
	p.members = append(p.members, Member{Key: key, Value: val})
	return index
}

func (p *parser) array() (Value, error) {
	if err := p.enter(); err != nil {
		return Value{}, err
	}
	defer func() { p.depth-- }()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return Value{kind: Array, arr: []Value{}}, nil
	}
	base := len(p.elems)
	for {
		v, err := p.value()
		if err != nil {
			return Value{}, err
		}
		p.elems = append(p.elems, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errorf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case ']':
			p.pos++
			arr := make([]Value, len(p.elems)-base)
			copy(arr, p.elems[base:])
			clear(p.elems[base:])
			p.elems = p.elems[:base]
			return Value{kind: Array, arr: arr}, nil
		default:
			return Value{}, p.errorf("unexpected %s, expecting ',' or ']'", p.describe())
		}
	}
}

// commonKeys are the keys of Rasa events, returned without allocating.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"sender_id", "event", "timestamp", "metadata", "text", "parse_data", "intent", "name",
		"confidence", "entities", "message_id", "input_channel", "intent_ranking", "policy", "action_text",
		"hide_rule_turn", "data", "value", "entity", "start", "end", "extractor", "confidence_entity",
		"model_id", "assistant_id", "is_interrupted", "use_text_for_featurization", "date_time",
		"kill_on_user_msg", "response_selector", "buttons", "title", "payload", "elements", "quick_replies",
		"attachment", "image", "custom", "utter_action", "id", "role", "group", "processors"} {
		m[k] = k
	}
	return m
}()

// key scans an object key, reusing the string of a common key.
func (p *parser) key() (string, error) {
	end := p.pos + 1
	for end < len(p.data) && p.data[end] != '"' && p.data[end] != '\\' && p.data[end] >= 0x20 && p.data[end] < 0x80 {
		end++
	}
	if end < len(p.data) && p.data[end] == '"' {
		if k, ok := commonKeys[string(p.data[p.pos+1:end])]; ok {
			p.pos = end + 1
			return k, nil
		}
	}
	return p.str()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans a JSON number and stores it as Python would print it.
func (p *parser) number() (Value, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := p.pos
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.pos < len(p.data) && isDigit(p.data[p.pos]):
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	default:
		return Value{}, p.errorf("unexpected %s in number", p.describe())
	}
	isFloat := false
	if p.pos < len(p.data) && p.data[p.pos] == '.' && p.pos+1 < len(p.data) && isDigit(p.data[p.pos+1]) {
		isFloat = true
		p.pos += 2
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		e := p.pos + 1
		if e < len(p.data) && (p.data[e] == '+' || p.data[e] == '-') {
			e++
		}
		if e < len(p.data) && isDigit(p.data[e]) {
			isFloat = true
			for p.pos = e; p.pos < len(p.data) && isDigit(p.data[p.pos]); p.pos++ {
			}
		}
	}
	lit := p.data[start:p.pos]
	if !isFloat {
		if p.pos-digits > maxIntDigits {
			return Value{}, &SyntaxError{Offset: start, Msg: fmt.Sprintf("integer of %d digits exceeds Python's limit of %d", p.pos-digits, maxIntDigits)}
		}
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			return Value{kind: Number, s: "0"}, nil // Python's int has no negative zero
		}
		return Value{kind: Number, s: string(lit)}, nil
	}
	f, err := strconv.ParseFloat(unsafe.String(&lit[0], len(lit)), 64) // not retained

	if err != nil {
		return Value{}, &SyntaxError{Offset: start, Msg: fmt.Sprintf("number %s is out of the range of a float64", lit)}
	}
	return Value{kind: Number, s: string(appendPyFloat(nil, f))}, nil
}

// str scans a JSON string at p.pos (which holds the opening quote). Lone
// UTF-16 surrogates, which Python keeps, are stored WTF-8 encoded so that
// they encode back to the same escape.
func (p *parser) str() (string, error) {
	p.pos++
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			seg := p.data[start:p.pos]
			if !utf8.Valid(seg) {
				return "", p.badUTF8(start)
			}
			p.pos++
			return string(seg), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	if !utf8.Valid(p.data[start:p.pos]) {
		return "", p.badUTF8(start)
	}
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, p.data[start:p.pos]...)
	for {
		if p.pos >= len(p.data) {
			return "", &SyntaxError{Offset: start - 1, Msg: "unterminated string"}
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character 0x%02x in string must be escaped", c)
		case c != '\\':
			run := p.pos
			for p.pos < len(p.data) && p.data[p.pos] != '"' && p.data[p.pos] != '\\' && p.data[p.pos] >= 0x20 {
				p.pos++
			}
			if !utf8.Valid(p.data[run:p.pos]) {
				return "", p.badUTF8(start)
			}
			buf = append(buf, p.data[run:p.pos]...)
			continue
		}
		if p.pos+1 >= len(p.data) {
			return "", p.errorf("unterminated escape in string")
		}
		esc := p.data[p.pos+1]
		p.pos += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if r >= 0xd800 && r < 0xdc00 && p.pos+6 <= len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
				save := p.pos
				p.pos += 2
				lo, err := p.hex4()
				if err == nil && lo >= 0xdc00 && lo < 0xe000 {
					buf = utf8.AppendRune(buf, 0x10000+(r-0xd800)<<10+(lo-0xdc00))
					continue
				}
				p.pos = save
			}
			buf = appendWTF8(buf, r)
		default:
			p.pos -= 2
			return "", p.errorf("invalid escape \\%c in string", esc)
		}
	}
}

func (p *parser) badUTF8(start int) error {
	return &SyntaxError{Offset: start - 1, Msg: "string is not valid UTF-8"}
}

func (p *parser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.errorf("truncated \\u escape")
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.errorf("invalid \\u escape")
		}
	}
	p.pos += 4
	return r, nil
}

// appendWTF8 appends r, encoding a lone surrogate as its generalized UTF-8
// three bytes (which utf8.AppendRune would replace with U+FFFD).
func appendWTF8(buf []byte, r rune) []byte {
	if r >= 0xd800 && r < 0xe000 {
		return append(buf, 0xed, byte(0x80|(r>>6)&0x3f), byte(0x80|r&0x3f))
	}
	return utf8.AppendRune(buf, r)
}

// surrogateAt reports the lone surrogate WTF-8 encoded at s[i:], if any.
func surrogateAt(s string, i int) (rune, bool) {
	if i+2 < len(s) && s[i] == 0xed && s[i+1] >= 0xa0 && s[i+1] <= 0xbf && s[i+2]&0xc0 == 0x80 {
		return 0xd000 | rune(s[i+1]&0x3f)<<6 | rune(s[i+2]&0x3f), true
	}
	return 0, false
}
