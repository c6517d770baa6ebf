package event

import (
	"strings"
	"testing"
)

// TestValidateText: every string and key of an event must be valid
// Unicode; a JSON escape of a lone surrogate is refused with the field's
// path, a surrogate pair is fine (issue 14).
func TestValidateText(t *testing.T) {
	cases := map[string]string{
		`{"event":"user","timestamp":1,"text":"ok \ud83d\ude00","parse_data":{}}`:                               "",
		`{"event":"user","timestamp":1,"text":"sur\udc00","parse_data":{}}`:                                     `text: contains a lone UTF-16 surrogate (\udc00)`,
		`{"event":"user","timestamp":1,"text":"x","parse_data":{"entities":[{"entity":"a","value":"\ud800"}]}}`: `parse_data.entities[0].value: contains a lone UTF-16 surrogate (\ud800)`,
		`{"event":"pause","timestamp":1,"metadata":{"\udfff":1}}`:                                               `metadata."\udfff": key contains a lone UTF-16 surrogate`,
		`{"event":"pause\udc00","timestamp":1}`:                                                                 `event: contains a lone UTF-16 surrogate`,
	}
	for in, want := range cases {
		ev, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		err = ev.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err = %v, want %q", in, err, want)
		}
	}
	ev, err := Parse([]byte(`{"sender_id":"a\udc00b","event":"pause","timestamp":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.ValidateForPublish(); err == nil || !strings.Contains(err.Error(), `sender_id: contains a lone UTF-16 surrogate (\udc00)`) {
		t.Fatalf("sender_id: %v", err)
	}
	if err := ValidText("consumer-name", "\xff\xfe"); err == nil || err.Error() != "consumer-name: is not valid UTF-8" {
		t.Fatalf("ValidText = %v", err)
	}
}

// TestValidateTimestampRange: a timestamp outside years 1 to 9999 cannot
// be held by every broker and the consumer API (1.23e29 became
// -9223372036854775808 ms) and is refused (issue 14).
func TestValidateTimestampRange(t *testing.T) {
	for ts, ok := range map[string]bool{
		"0": true, "1": true, "1700000000.123": true, "253402300799": true, "-62135596800": true,
		"253402300800": false, "1.23e29": false, "-62135596801": false,
	} {
		ev, err := Parse([]byte(`{"event":"pause","timestamp":` + ts + `}`))
		if err != nil {
			t.Fatal(err)
		}
		err = ev.Validate()
		if ok != (err == nil) || !ok && !strings.Contains(err.Error(), "timestamp: must be Unix seconds between -62135596800 and 253402300799") {
			t.Errorf("timestamp %s: %v", ts, err)
		}
	}
}
