package event

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, "unexpected end of input"},
		{`[1,2]`, "must be a JSON object, got array"},
		{`{"a":1,}`, "expecting a key string"},
		{`{"a" 1}`, `expecting ':' after key "a"`},
		{`{"a":NaN}`, "NaN and Infinity are not JSON"},
		{`{"a":1e400}`, "out of the range of a float64"},
		{`{"a":01}`, "expecting ',' or '}'"},
		{`{"a":"x` + "\x01" + `"}`, "control character 0x01"},
		{`{"a":"\x"}`, `invalid escape \x`},
		{"{\"a\":\"\xff\"}", "not valid UTF-8"},
		{`{"a":"\u12"}`, `invalid \u escape`},
		{`{"a":1} x`, "after the value"},
		{`{"sender_id":5,"event":"bot"}`, "sender_id: must be a string, got number"},
		{strings.Repeat("[", MaxDepth+1), "nesting deeper than"},
		{`{"n":1` + strings.Repeat("0", maxIntDigits) + `}`, "exceeds Python's limit"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.40q) = %v, want error containing %q", c.in, err, c.want)
		}
	}
}

func TestSyntaxErrorOffset(t *testing.T) {
	_, err := ParseValue([]byte(`{"a": tru}`))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 6 {
		t.Fatalf("got %v, want SyntaxError at byte 6", err)
	}
}

func TestDuplicateKeysPythonSemantics(t *testing.T) {
	for _, n := range []int{3, 40} { // below and above the index threshold
		var b strings.Builder
		b.WriteString(`{"dup":0`)
		for i := 0; i < n; i++ {
			b.WriteString(`,"k` + strings.Repeat("x", i) + `":1`)
		}
		b.WriteString(`,"dup":9}`)
		v, err := ParseValue([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		if v.Members()[0].Key != "dup" || v.Members()[0].Value.NumberText() != "9" || v.Len() != n+1 {
			t.Fatalf("n=%d: first member %+v, len %d", n, v.Members()[0], v.Len())
		}
	}
}

func TestUnknownTypeAndFieldsRoundTrip(t *testing.T) {
	in := `{"sender_id":"s","event":"my_custom","timestamp":1.0,"zeta":{"b":[1,2.50,{"c":null}],"a":"\u00e9"},"alpha":-0.0}`
	ev, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.ValidateForPublish(); err != nil {
		t.Fatalf("unknown type rejected: %v", err)
	}
	want := `{"sender_id": "s", "event": "my_custom", "timestamp": 1.0, "zeta": {"b": [1, 2.5, {"c": null}], "a": "\u00e9"}, "alpha": -0.0}`
	if got := string(ev.RasaJSON()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	again, err := Parse(ev.RasaJSON())
	if err != nil || !Equal(again.Value(), ev.Value()) {
		t.Fatalf("re-parse differs: %v", err)
	}
}
