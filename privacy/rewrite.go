package privacy

import (
	"sort"
	"strings"

	"github.com/parleyhq/parley/event"
)

// Learned is a PII value known for a conversation: the value of a slot or
// entity that a rule names.
type Learned struct {
	Name  string // the slot's or entity's name
	Value string
}

// maxLearnedBytes bounds a learned value: longer ones (free-text slots)
// are still anonymized in their slot event but not searched for in text.
const maxLearnedBytes = 1024

// structural are top-level keys that hold no user data: event type, time,
// slot and action names, policies, channel and message ids.
var structural = map[string]bool{
	"event": true, "timestamp": true, "name": true, "policy": true, "confidence": true,
	"input_channel": true, "message_id": true,
}

// learn appends to dst the values ev carries for the slot and entity
// names in slots and entities: a slot event's value, and the value of
// every {"entity": name, "value": v} object anywhere in the event.
func learn(dst []Learned, ev event.Event, slots, entities map[string]bool) []Learned {
	if ev.Type() == event.TypeSlot {
		if n, _ := ev.Get("name"); slots[n.Str()] {
			v, _ := ev.Get("value")
			dst = scalars(dst, n.Str(), v)
		}
	}
	for _, m := range ev.Body().Members() {
		if !structural[m.Key] {
			dst = learnEntities(dst, m.Value, slots, entities, 0)
		}
	}
	return dst
}

func learnEntities(dst []Learned, v event.Value, slots, entities map[string]bool, depth int) []Learned {
	if depth > 32 {
		return dst
	}
	switch v.Kind() {
	case event.Array:
		for _, e := range v.Elems() {
			dst = learnEntities(dst, e, slots, entities, depth+1)
		}
	case event.Object:
		if e, ok := v.Get("entity"); ok && (entities[e.Str()] || slots[e.Str()]) {
			if val, ok := v.Get("value"); ok {
				dst = scalars(dst, e.Str(), val)
			}
		}
		for _, m := range v.Members() {
			if m.Value.Kind() == event.Array || m.Value.Kind() == event.Object {
				dst = learnEntities(dst, m.Value, slots, entities, depth+1)
			}
		}
	}
	return dst
}

// scalars appends the strings and numbers of v (a value or a list of them).
func scalars(dst []Learned, name string, v event.Value) []Learned {
	switch v.Kind() {
	case event.String:
		if s := v.Str(); s != "" && len(s) <= maxLearnedBytes {
			dst = append(dst, Learned{Name: name, Value: s})
		}
	case event.Number:
		dst = append(dst, Learned{Name: name, Value: v.NumberText()})
	case event.Array:
		for _, e := range v.Elems() {
			dst = scalars(dst, name, e)
		}
	}
	return dst
}

// rewriter anonymizes events with one rule set and the values known for
// their conversation.
type rewriter struct {
	set    *RuleSet
	need   need
	minLen int
	// thorough skips the prefilter, for tests that check it hides nothing.
	thorough bool
	known    []knownValue // longest first
	counts   map[*Rule]int
}

type knownValue struct {
	Learned
	rule    *Rule
	lower   string // ASCII lower case, "" when the value is not ASCII
	escaped []byte // lower as it appears in JSON, nil when escaped
}

func newRewriter(set *RuleSet, minLen int) *rewriter {
	return &rewriter{set: set, need: set.needs(), minLen: minLen, counts: map[*Rule]int{}}
}

func (w *rewriter) setKnown(vs []Learned) {
	w.known = w.known[:0]
	if len(vs) == 0 {
		return
	}
	for _, l := range vs {
		r := w.set.bySlot[l.Name]
		if r == nil {
			r = w.set.byEntity[l.Name]
		}
		if r == nil || len(l.Value) < w.minLen {
			continue
		}
		k := knownValue{Learned: l, rule: r}
		if isASCII(l.Value) {
			k.lower = strings.ToLower(l.Value)
			k.escaped = jsonEscaped(k.lower)
		}
		w.known = append(w.known, k)
	}
	if len(w.known) > 1 {
		sort.SliceStable(w.known, func(i, j int) bool { return len(w.known[i].Value) > len(w.known[j].Value) })
	}
}

// event returns ev anonymized, and whether anything changed. Only the
// top-level fields that change are re-encoded: every other byte of the
// event's Rasa JSON is kept.
//
// named is false when the event certainly names no slot or entity of any
// rule set (a cheaper test the caller already made); true means "maybe".
func (w *rewriter) event(ev event.Event, named bool) (event.Event, bool, error) {
	if !w.thorough && !w.mayMatch(ev.RasaJSON(), named) {
		return ev, false, nil
	}
	members := ev.Body().Members()
	var changed map[string]event.Value
	slotRule := (*Rule)(nil)
	if ev.Type() == event.TypeSlot {
		n, _ := ev.Get("name")
		slotRule = w.set.bySlot[n.Str()]
	}
	for _, m := range members {
		if structural[m.Key] {
			continue
		}
		var nv event.Value
		var ch bool
		if slotRule != nil && m.Key == "value" {
			nv, ch = w.whole(m.Value, slotRule)
		} else {
			nv, ch = w.walk(m.Value, 0)
		}
		if ch {
			if changed == nil {
				changed = map[string]event.Value{}
			}
			changed[m.Key] = nv
		}
	}
	if changed == nil {
		return ev, false, nil
	}
	raw, err := splice(ev.RasaJSON(), changed)
	if err != nil {
		return ev, false, err
	}
	out, err := event.FromRasa(ev.ID, raw)
	if err != nil {
		return ev, false, err
	}
	out.Headers = ev.Headers
	return out, true, nil
}

// whole anonymizes a slot's value: a string or number as one value, a list
// element by element; true, false and null stay.
func (w *rewriter) whole(v event.Value, r *Rule) (event.Value, bool) {
	switch v.Kind() {
	case event.String:
		w.counts[r]++
		return event.StringValue(r.Anonymization.apply(v.Str())), true
	case event.Number:
		w.counts[r]++
		return event.StringValue(r.Anonymization.apply(v.NumberText())), true
	case event.Array:
		out := make([]event.Value, len(v.Elems()))
		ch := false
		for i, e := range v.Elems() {
			var c bool
			out[i], c = w.whole(e, r)
			ch = ch || c
		}
		if ch {
			return event.ArrayValue(out...), true
		}
	case event.Object:
		return w.walk(v, 0)
	}
	return v, false
}

// walk anonymizes every string inside v: an entity object whose entity a
// rule names has its value anonymized whole; other strings have the known
// values and what the recognizers find replaced.
func (w *rewriter) walk(v event.Value, depth int) (event.Value, bool) {
	if depth > event.MaxDepth {
		return v, false
	}
	switch v.Kind() {
	case event.String:
		s, ch := w.text(v.Str())
		if ch {
			return event.StringValue(s), true
		}
	case event.Array:
		var out []event.Value
		for i, e := range v.Elems() {
			nv, ch := w.walk(e, depth+1)
			if ch && out == nil {
				out = append(make([]event.Value, 0, len(v.Elems())), v.Elems()[:i]...)
			}
			if out != nil {
				out = append(out, nv)
			}
		}
		if out != nil {
			return event.ArrayValue(out...), true
		}
	case event.Object:
		var entRule *Rule
		if e, ok := v.Get("entity"); ok && e.Kind() == event.String {
			entRule = w.set.byEntity[e.Str()]
			if entRule == nil {
				entRule = w.set.bySlot[e.Str()]
			}
		}
		var out []event.Member
		for i, m := range v.Members() {
			var nv event.Value
			var ch bool
			if entRule != nil && m.Key == "value" {
				nv, ch = w.whole(m.Value, entRule)
			} else {
				nv, ch = w.walk(m.Value, depth+1)
			}
			if ch && out == nil {
				out = append(make([]event.Member, 0, len(v.Members())), v.Members()[:i]...)
			}
			if out != nil {
				out = append(out, event.Member{Key: m.Key, Value: nv})
			}
		}
		if out != nil {
			return event.ObjectValue(out...), true
		}
	}
	return v, false
}

type span struct {
	a, b int
	rule *Rule
	// learned is the value as learned, when the span matched it (perhaps
	// in another case): hashes are of it, so they join with the slot's.
	learned string
}

// text replaces the known values and recognized PII in s.
func (w *rewriter) text(s string) (string, bool) {
	if len(s) < 2 {
		return s, false
	}
	var found []span
	var lower string
	for i := range w.known {
		k := &w.known[i]
		hay, needle := s, k.Value
		if k.lower != "" {
			if lower == "" {
				lower = asciiLower(s)
			}
			hay, needle = lower, k.lower
		}
		for off := 0; ; {
			j := strings.Index(hay[off:], needle)
			if j < 0 {
				break
			}
			found = append(found, span{off + j, off + j + len(needle), k.rule, k.Value})
			off += j + len(needle)
		}
	}
	for _, r := range w.set.recs {
		for _, m := range r.rec.Find(s) {
			if m[0] >= 0 && m[0] < m[1] && m[1] <= len(s) {
				found = append(found, span{m[0], m[1], r, ""})
			}
		}
	}
	if len(found) == 0 {
		return s, false
	}
	// Earliest first, longest first among equals; overlapping spans are
	// merged into the first one.
	sort.Slice(found, func(i, j int) bool {
		if found[i].a != found[j].a {
			return found[i].a < found[j].a
		}
		return found[i].b > found[j].b
	})
	var b strings.Builder
	b.Grow(len(s))
	pos := 0
	for i := 0; i < len(found); i++ {
		sp := found[i]
		for i+1 < len(found) && found[i+1].a < sp.b {
			if found[i+1].b > sp.b {
				sp.b = found[i+1].b
			}
			i++
		}
		b.WriteString(s[pos:sp.a])
		v := s[sp.a:sp.b]
		if sp.rule.Anonymization.Type == TypeHash && sp.learned != "" && len(sp.learned) == len(v) {
			v = sp.learned
		}
		b.WriteString(sp.rule.Anonymization.apply(v))
		w.counts[sp.rule]++
		pos = sp.b
	}
	b.WriteString(s[pos:])
	return b.String(), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// asciiLower lower-cases ASCII letters only, so byte offsets are kept.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
