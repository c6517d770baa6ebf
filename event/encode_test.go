package event

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

// TestFixturesRasaBytes is the contract with Rasa: every shared fixture
// line, parsed and re-encoded, must equal what Rasa published for it.
func TestFixturesRasaBytes(t *testing.T) {
	in, want := fixtures.Events(), fixtures.RasaBytes()
	if len(in) != len(want) || len(in) == 0 {
		t.Fatalf("fixtures: %d input lines, %d expected lines", len(in), len(want))
	}
	for i := range in {
		ev, err := Parse(in[i])
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if err := ev.ValidateForPublish(); err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
		if got := ev.RasaJSON(); !bytes.Equal(got, want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got, want[i])
		}
	}
}

// TestPythonVectors compares the encoders with json.dumps output recorded by
// testdata/gen_vectors.py: numbers, escapes, huge integers, key order.
func TestPythonVectors(t *testing.T) {
	f, err := os.Open("testdata/vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 3 {
			t.Fatalf("vectors line %d: %d columns", n, len(cols))
		}
		var text [3]string
		for i, c := range cols {
			v, err := ParseValue([]byte(c))
			if err != nil || v.Kind() != String {
				t.Fatalf("vectors line %d column %d: %v", n, i, err)
			}
			text[i] = v.Str()
		}
		v, err := ParseValue([]byte(text[0]))
		if err != nil {
			t.Errorf("parse %s: %v", text[0], err)
			continue
		}
		if got := string(v.AppendJSON(nil, FormatRasa)); got != text[1] {
			t.Errorf("rasa format of %s:\n got %s\nwant %s", text[0], got, text[1])
		}
		// Python writes lone surrogates raw with ensure_ascii=False, which no
		// UTF-8 output can hold; parley escapes them instead.
		if strings.Contains(text[0], `\ud800`) || strings.Contains(text[0], `\udc00`) || strings.Contains(text[0], `\ud83dx`) {
			continue
		}
		if got := string(v.AppendJSON(nil, FormatCompact)); got != text[2] {
			t.Errorf("compact format of %s:\n got %s\nwant %s", text[0], got, text[2])
		}
	}
	if n < 100 {
		t.Fatalf("only %d vectors read", n)
	}
}

func TestEncodeCases(t *testing.T) {
	cases := []struct{ in, rasa, compact string }{
		{`{"sender_id":"s","event":"bot","timestamp":1}`, `{"sender_id": "s", "event": "bot", "timestamp": 1}`, `{"sender_id":"s","event":"bot","timestamp":1}`},
		// sender_id moves to the front, as {"sender_id": id}.update(event) does.
		{`{"event":"bot","sender_id":"s","timestamp":1.50}`, `{"sender_id": "s", "event": "bot", "timestamp": 1.5}`, `{"sender_id":"s","event":"bot","timestamp":1.5}`},
		{`{"sender_id":"ü","event":"x","timestamp":1e-5}`, `{"sender_id": "\u00fc", "event": "x", "timestamp": 1e-05}`, `{"sender_id":"ü","event":"x","timestamp":1e-05}`},
		{`{"sender_id":"s","event":"x","timestamp":0,"n":123456789012345678901234567890}`, `{"sender_id": "s", "event": "x", "timestamp": 0, "n": 123456789012345678901234567890}`, `{"sender_id":"s","event":"x","timestamp":0,"n":123456789012345678901234567890}`},
		{`{"sender_id":"s","event":"x","timestamp":0,"e":"😀"}`, `{"sender_id": "s", "event": "x", "timestamp": 0, "e": "\ud83d\ude00"}`, `{"sender_id":"s","event":"x","timestamp":0,"e":"😀"}`},
	}
	for _, c := range cases {
		ev, err := Parse([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := string(ev.RasaJSON()); got != c.rasa {
			t.Errorf("rasa %s:\n got %s\nwant %s", c.in, got, c.rasa)
		}
		if got := string(ev.AppendJSON(nil, FormatCompact)); got != c.compact {
			t.Errorf("compact %s:\n got %s\nwant %s", c.in, got, c.compact)
		}
	}
}

func TestFromRasaKeepsBytes(t *testing.T) {
	raw := fixtures.RasaBytes()[3]
	ev, err := FromRasa("id-1", raw)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "id-1" || ev.SenderID != "default" || ev.Type() != TypeUser {
		t.Fatalf("got id=%q sender=%q type=%q", ev.ID, ev.SenderID, ev.Type())
	}
	if !bytes.Equal(ev.RasaJSON(), raw) {
		t.Fatalf("bytes changed")
	}
	moved := ev
	moved.SenderID = "other"
	if got := string(moved.RasaJSON()); !strings.HasPrefix(got, `{"sender_id": "other", "event": "user"`) {
		t.Fatalf("changed sender not re-encoded: %s", got)
	}
}

func TestWith(t *testing.T) {
	ev, err := Parse([]byte(`{"sender_id":"a","event":"bot","timestamp":5,"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	later := ev.With("timestamp", FloatValue(10)).With("extra", BoolValue(true))
	if got := string(later.RasaJSON()); got != `{"sender_id": "a", "event": "bot", "timestamp": 10.0, "text": "hi", "extra": true}` {
		t.Fatalf("got %s", got)
	}
	if got := string(ev.RasaJSON()); got != `{"sender_id": "a", "event": "bot", "timestamp": 5, "text": "hi"}` {
		t.Fatalf("original changed: %s", got)
	}
}

func TestExportedPutsSenderLast(t *testing.T) {
	ev, err := Parse([]byte(`{"sender_id":"a","event":"bot","timestamp":5}`))
	if err != nil {
		t.Fatal(err)
	}
	exp := ev.Exported()
	want := `{"event": "bot", "timestamp": 5, "sender_id": "a"}`
	if got := string(exp.RasaJSON()); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// Read back from its bytes (the spool), it keeps the export layout.
	back, err := FromRasa("x", exp.RasaJSON())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(back.AppendJSON(nil, FormatCompact)); got != `{"event":"bot","timestamp":5,"sender_id":"a"}` {
		t.Fatalf("compact of re-read export: %s", got)
	}
}

func TestFromRasaTrustedIsLazyAndComplete(t *testing.T) {
	for i, raw := range fixtures.RasaBytes() {
		ev := FromRasaTrusted("id", "ignored-until-checked", raw)
		full, err := FromRasa("id", raw)
		if err != nil {
			t.Fatal(err)
		}
		ev.SenderID = full.SenderID
		ev.rasaSender = full.SenderID
		if got := ev.RasaJSON(); !bytes.Equal(got, raw) {
			t.Fatalf("line %d: bytes changed", i+1)
		}
		if ev.lazy == nil {
			t.Fatal("RasaJSON parsed the body")
		}
		if ev.Type() != full.Type() || !Equal(ev.Value(), full.Value()) || ev.Validate() != nil {
			t.Fatalf("line %d: lazy body differs", i+1)
		}
		if got := string(ev.AppendJSON(nil, FormatCompact)); got != string(full.AppendJSON(nil, FormatCompact)) {
			t.Fatalf("line %d: compact differs", i+1)
		}
	}
	bad := FromRasaTrusted("x", "s", []byte("not json"))
	if bad.Type() != "" || bad.Body().Len() != 0 {
		t.Fatal("unparsable trusted bytes should give an empty body")
	}
}

// TestUJSON checks what Rasa HTTP API bytes (ujson 5.x, checked by running it)
// look like.
func TestUJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"u":"https://x/y","f":1700000000.123456,"h":1e-07,"k":1e+22,"n":"\u00e9"}`, `{"u":"https:\/\/x\/y","f":1700000000.123456,"h":1e-7,"k":1e+22,"n":"\u00e9"}`},
		{`["\b\f\n\r\t\u0001\u007f<>&", "😀", "\ud800"]`, "[\"\\b\\f\\n\\r\\t\\u0001\x7f<>&\",\"\\ud83d\\ude00\",\"\\ud800\"]"},
		{`[1e-05, 0.0001, 1.5e+300, 1e+16, -0.0, 123456789012345678901234567890, true, null, {}]`, `[1e-5,0.0001,1.5e+300,1e+16,-0.0,123456789012345678901234567890,true,null,{}]`},
	}
	for _, tt := range tests {
		v, err := ParseValue([]byte(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(v.AppendJSON(nil, FormatUJSON)); got != tt.want {
			t.Errorf("FormatUJSON of %s\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
