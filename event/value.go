package event

import (
	"math"
	"strconv"
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON kinds. The zero Value is Null.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"null", "boolean", "number", "string", "array", "object"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is an immutable JSON value that keeps what Python's json module
// keeps: object key order, integers of any size, and every string exactly.
// Numbers are stored in the text Python would print for them, so encoding
// never has to reformat them.
type Value struct {
	kind Kind
	b    bool
	s    string   // String: the decoded text; Number: Python's repr of it
	arr  []Value  // Array
	obj  []Member // Object, in key order, keys unique
}

// Member is one key of an object.
type Member struct {
	Key   string
	Value Value
}

// NullValue returns JSON null.
func NullValue() Value { return Value{} }

// BoolValue returns a JSON boolean.
func BoolValue(b bool) Value { return Value{kind: Bool, b: b} }

// StringValue returns a JSON string.
func StringValue(s string) Value { return Value{kind: String, s: s} }

// IntValue returns a JSON integer.
func IntValue(i int64) Value { return Value{kind: Number, s: strconv.FormatInt(i, 10)} }

// FloatValue returns a JSON number that Python would hold as a float, so
// that 1 encodes as 1.0. NaN and infinities, which JSON cannot carry, become
// null.
func FloatValue(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}
	}
	return Value{kind: Number, s: string(appendPyFloat(nil, f))}
}

// ArrayValue returns a JSON array of vs (not copied).
func ArrayValue(vs ...Value) Value { return Value{kind: Array, arr: vs} }

// ObjectValue returns a JSON object of ms in order. A repeated key keeps its
// first position and its last value, as a Python dict built from them would.
func ObjectValue(ms ...Member) Value {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = setMember(out, m.Key, m.Value)
	}
	return Value{kind: Object, obj: out}
}

// Kind reports the JSON type of v.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is JSON null (or the zero Value).
func (v Value) IsNull() bool { return v.kind == Null }

// Str returns the text of a String and "" otherwise.
func (v Value) Str() string {
	if v.kind == String {
		return v.s
	}
	return ""
}

// Bool returns the value of a Bool and false otherwise.
func (v Value) Bool() bool { return v.kind == Bool && v.b }

// NumberText returns a Number as Python's json.dumps would print it
// ("4", "1.0", "1e-05") and "" for other kinds.
func (v Value) NumberText() string {
	if v.kind == Number {
		return v.s
	}
	return ""
}

// Float returns a Number as a float64 (integers beyond 2^53 lose
// precision) and false for other kinds.
func (v Value) Float() (float64, bool) {
	if v.kind != Number {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.s, 64)
	return f, err == nil || isRangeErr(err)
}

// IsInteger reports whether v is a Number without a fraction or exponent,
// which Python would load as an int.
func (v Value) IsInteger() bool {
	if v.kind != Number {
		return false
	}
	for i := 0; i < len(v.s); i++ {
		switch v.s[i] {
		case '.', 'e', 'E':
			return false
		}
	}
	return true
}

// Len returns the number of elements of an Array or members of an Object.
func (v Value) Len() int {
	switch v.kind {
	case Array:
		return len(v.arr)
	case Object:
		return len(v.obj)
	}
	return 0
}

// Index returns element i of an Array.
func (v Value) Index(i int) Value {
	if v.kind != Array || i < 0 || i >= len(v.arr) {
		return Value{}
	}
	return v.arr[i]
}

// Elems returns the elements of an Array. The slice must not be modified.
func (v Value) Elems() []Value {
	if v.kind != Array {
		return nil
	}
	return v.arr
}

// Members returns the members of an Object in order. The slice must not be
// modified.
func (v Value) Members() []Member {
	if v.kind != Object {
		return nil
	}
	return v.obj
}

// Get returns the value of key in an Object.
func (v Value) Get(key string) (Value, bool) {
	if v.kind != Object {
		return Value{}, false
	}
	for i := range v.obj {
		if v.obj[i].Key == key {
			return v.obj[i].Value, true
		}
	}
	return Value{}, false
}

// With returns a copy of an Object with key set to val: an existing key
// keeps its position, a new one goes last. v itself is unchanged.
func (v Value) With(key string, val Value) Value {
	ms := make([]Member, len(v.obj), len(v.obj)+1)
	copy(ms, v.obj)
	return Value{kind: Object, obj: setMember(ms, key, val)}
}

// Without returns a copy of an Object without key.
func (v Value) Without(key string) Value {
	ms := make([]Member, 0, len(v.obj))
	for _, m := range v.obj {
		if m.Key != key {
			ms = append(ms, m)
		}
	}
	return Value{kind: Object, obj: ms}
}

// Equal reports whether a and b are the same JSON value, key order included.
func Equal(a, b Value) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case Null:
		return true
	case Bool:
		return a.b == b.b
	case Number, String:
		return a.s == b.s
	case Array:
		if len(a.arr) != len(b.arr) {
			return false
		}
		for i := range a.arr {
			if !Equal(a.arr[i], b.arr[i]) {
				return false
			}
		}
		return true
	default:
		if len(a.obj) != len(b.obj) {
			return false
		}
		for i := range a.obj {
			if a.obj[i].Key != b.obj[i].Key || !Equal(a.obj[i].Value, b.obj[i].Value) {
				return false
			}
		}
		return true
	}
}

// setMember sets key in ms the way a Python dict assignment does.
func setMember(ms []Member, key string, val Value) []Member {
	for i := range ms {
		if ms[i].Key == key {
			ms[i].Value = val
			return ms
		}
	}
	return append(ms, Member{Key: key, Value: val})
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
