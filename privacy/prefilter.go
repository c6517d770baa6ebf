package privacy

import (
	"bytes"
	"encoding/binary"

	"github.com/parleyhq/parley/event"
)

// Most events carry no PII. Before parsing one, a scan of its bytes tells
// whether anything could match: the built-in recognizers need an "@" or a
// run of digits inside a string, slots and entities their key, learned
// values themselves. Events that cannot match are passed on untouched and
// unparsed, which keeps the cost of the rules low (docs/benchmarks.md).

// builtinNeeds says what in a string a built-in recognizer needs to match.
var builtinNeeds = map[string]need{"email": needAt, "phone": needDigits, "credit_card": needDigits, "iban": needDigits}

type need uint8

const (
	needAt need = 1 << iota
	needDigits
	needAll // a recognizer parley knows nothing of: always parse
)

// minDigitRun is the fewest digits (separators allowed between them) any
// built-in digit recognizer matches: a phone number. An IBAN's letters
// break runs, but every IBAN has a longer run of digits.
const minDigitRun = 8

// nameTokens finds, without parsing, whether an event names a slot or
// entity of the rules: a slot event's "name", or an "entity" key anywhere,
// whose string value is one of the names. Names that JSON escapes (quotes,
// control or non-ASCII characters) make every event worth a closer look.
type nameTokens struct {
	slots    map[string]bool // values of a slot event's "name"
	entities map[string]bool // values of "entity" keys
	always   bool
}

var (
	tokSlot      = []byte(`"slot"`)
	tokEventSlot = []byte(`, "event": "slot"`)
	tokName      = []byte(`"name"`)
)

func newNameTokens(slots, entities map[string]bool) nameTokens {
	t := nameTokens{}
	for n := range slots {
		if t.slots == nil {
			t.slots, t.entities = map[string]bool{}, map[string]bool{}
		}
		t.slots[n], t.entities[n] = true, true
	}
	for n := range entities {
		if t.entities == nil {
			t.entities = map[string]bool{}
		}
		t.entities[n] = true
	}
	for n := range t.entities {
		if n == "" || jsonEscaped(n) == nil {
			t.always = true
		}
	}
	return t
}

// in reports whether raw may name one of the slots or entities.
func (t *nameTokens) in(raw []byte) bool {
	if t.always {
		return true
	}
	if t.slots != nil && isSlotEvent(raw) {
		for off := 0; ; {
			j := bytes.Index(raw[off:], tokName)
			if j < 0 {
				break
			}
			if stringValueIn(raw, off+j+len(tokName), t.slots) {
				return true
			}
			off += j + 1
		}
	}
	if t.entities != nil {
		for off := 0; ; {
			p := nextEntityKey(raw, off)
			if p < 0 {
				break
			}
			if stringValueIn(raw, p, t.entities) {
				return true
			}
			off = p
		}
	}
	return false
}

// stringValueIn reports whether the key ending before raw[p] has a string
// value in names.
func stringValueIn(raw []byte, p int, names map[string]bool) bool {
	p = skipWS(raw, p)
	if p >= len(raw) || raw[p] != ':' {
		return false
	}
	p = skipWS(raw, p+1)
	if p >= len(raw) || raw[p] != '"' {
		return false
	}
	e := bytes.IndexByte(raw[p+1:], '"')
	return e >= 0 && names[string(raw[p+1:p+1+e])]
}

// nextEntityKey returns the index after the next "entity" key at or after
// off, or -1. It looks for the rare "y" (vectorized) rather than for the
// quotes JSON is full of.
func nextEntityKey(raw []byte, off int) int {
	for {
		j := bytes.IndexByte(raw[off:], 'y')
		if j < 0 {
			return -1
		}
		p := off + j
		if p >= 6 && p+1 < len(raw) && raw[p+1] == '"' && string(raw[p-6:p]) == `"entit` {
			return p + 2
		}
		off = p + 1
	}
}

// hasEntityKey reports whether raw has an "entity" key.
func hasEntityKey(raw []byte) bool { return nextEntityKey(raw, 0) >= 0 }

// isSlotEvent reports whether raw may be a slot event. Rasa's bytes name
// the type right after the sender, which is quick to check; other layouts
// get a search.
func isSlotEvent(raw []byte) bool {
	if bytes.HasPrefix(raw, senderPrefix) {
		if e := bytes.IndexByte(raw[len(senderPrefix):], '"'); e >= 0 && raw[len(senderPrefix)+e-1] != '\\' {
			rest := raw[len(senderPrefix)+e+1:]
			if bytes.HasPrefix(rest, []byte(`, "event": "`)) {
				return bytes.HasPrefix(rest, tokEventSlot)
			}
		}
	}
	return bytes.Contains(raw, tokSlot)
}

// needs returns what the recognizers of set need.
func (s *RuleSet) needs() need {
	var n need
	for _, r := range s.recs {
		nd, ok := builtinNeeds[r.Recognizer]
		if !ok {
			nd = needAll
		}
		n |= nd
	}
	return n
}

// mayMatch reports whether the event bytes raw may hold something w's
// rules rewrite; false means they certainly do not.
func (w *rewriter) mayMatch(raw []byte, named bool) bool {
	if named && w.set.names.in(raw) {
		return true
	}
	if len(w.known) > 0 && w.knownIn(raw) {
		return true
	}
	n := w.need
	if n == 0 {
		return false
	}
	if n&needAll != 0 {
		return true
	}
	return scanStrings(raw, n)
}

// knownIn reports whether a learned value may be in raw.
func (w *rewriter) knownIn(raw []byte) bool {
	var lower []byte
	for i := range w.known {
		k := &w.known[i]
		if k.lower == "" || k.escaped == nil {
			return true // not plain ASCII in JSON: look properly
		}
		if lower == nil {
			lower = bytes.ToLower(raw)
		}
		if bytes.Contains(lower, k.escaped) {
			return true
		}
	}
	return false
}

// jsonEscaped returns s (ASCII lower case) as it appears inside a JSON
// string in Rasa's encoding, or nil when that is not s itself.
func jsonEscaped(s string) []byte {
	b := event.StringValue(s).AppendJSON(nil, event.FormatRasa)
	b = b[1 : len(b)-1]
	if string(b) != s {
		return nil // escapes: other encoders may write them otherwise
	}
	return b
}

// Byte classes for scanStrings.
const (
	clOther uint8 = iota
	clDigit
	clSep
)

var byteClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = clDigit
	}
	for _, c := range " -./()+" {
		t[c] = clSep
	}
	t['@'] = clSep // an "@" is looked for on its own
	return t
}()

// scanStrings reports whether raw may hold what n needs: an "@", or a run
// of minDigitRun digits with separators between them. It is one pass over
// the bytes without telling strings from numbers (so it errs on the side
// of a closer look), but for the two long numbers every event has: the
// sender_id in front and the timestamp.
func scanStrings(raw []byte, n need) bool {
	if n&needAt != 0 && bytes.IndexByte(raw, '@') >= 0 {
		return true
	}
	if n&needDigits == 0 {
		return false
	}
	i := 0
	if bytes.HasPrefix(raw, senderPrefix) {
		if e := bytes.IndexByte(raw[len(senderPrefix):], '"'); e >= 0 {
			i = len(senderPrefix) + e + 1
		}
	}
	run, start := 0, 0
	for ; i < len(raw); i++ {
		// Eight bytes at a time while no run is going and none is a digit
		// (most of an event: keys, words): no run can start there.
		for run == 0 && i+8 <= len(raw) && !hasDigit(binary.LittleEndian.Uint64(raw[i:])) {
			i += 8
		}
		if i >= len(raw) {
			break
		}
		switch byteClass[raw[i]] {
		case clDigit:
			if run == 0 {
				start = i
			}
			if run++; run >= minDigitRun {
				if isISODate(raw[start:]) {
					i, run = start+9, 0 // a date, 2026-11-22: no recognizer wants it
					continue
				}
				if n := secondsFraction(raw, start); n > 0 {
					i, run = start+n-1, 0 // the seconds of a time, 11:41:10.128172
					continue
				}
				if start >= len(tsPrefix) && bytes.Equal(raw[start-len(tsPrefix):start], tsPrefix) {
					// the timestamp: skip the number
					for i < len(raw) && byteClass[raw[i]] == clDigit || i < len(raw) && raw[i] == '.' {
						i++
					}
					run = 0
					continue
				}
				return true
			}
		case clSep:
			// separators keep a run going: +1 (415) 555-0132
		default:
			run = 0
		}
	}
	return false
}

// hasDigit reports whether a byte of the word w is an ASCII digit: after
// the xor digits are the bytes below 10, found with the classic
// "has a byte less than n" test (exact for n <= 128).
func hasDigit(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := w ^ 0x3030303030303030
	return (x-ones*10)&^x&highs != 0
}

// secondsFraction returns the length of the seconds with a fraction,
// 10.128172, of a time starting at raw[start] (after a ":"), or 0.
func secondsFraction(raw []byte, start int) int {
	if start == 0 || raw[start-1] != ':' || start+3 >= len(raw) || raw[start+2] != '.' ||
		byteClass[raw[start]] != clDigit || byteClass[raw[start+1]] != clDigit {
		return 0
	}
	i := start + 3
	for i < len(raw) && byteClass[raw[i]] == clDigit {
		i++
	}
	if i < len(raw) && byteClass[raw[i]] == clSep {
		return 0 // more number-like text follows: look closer
	}
	return i - start
}

// isISODate reports whether b starts with a date, 2026-11-22, that no
// more digits follow.
func isISODate(b []byte) bool {
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9} {
		if byteClass[b[i]] != clDigit {
			return false
		}
	}
	return len(b) == 10 || byteClass[b[10]] == clOther
}

var (
	senderPrefix = []byte(`{"sender_id": "`)
	tsPrefix     = []byte(`"timestamp": `)
)
