package event

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestCanonicalMatchesRasa replays testdata/canonical.tsv, written by Rasa
// 3.6.21's own classes (gen_canonical.py), byte for byte.
func TestCanonicalMatchesRasa(t *testing.T) {
	f, err := os.Open("testdata/canonical.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer func(old func() string) { reminderName = old }(reminderName)
	reminderName = func() string { return "9f2d5c9e-8a3b-11ee-b9d1-0242ac120002" }
	now := func() float64 { return 1700000123.25 }
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n, errs := 0, 0
	for sc.Scan() {
		n++
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 2 {
			t.Fatalf("line %d: %d columns", n, len(cols))
		}
		in, _ := ParseValue([]byte(cols[0]))
		want, _ := ParseValue([]byte(cols[1]))
		body, err := ParseValue([]byte(in.Str()))
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		ev, err := New("c", body)
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		got, err := Canonical(ev, now)
		if want.Str() == "!error" {
			errs++
			if err == nil {
				t.Errorf("line %d: %s: Rasa fails, parley made %s", n, in.Str(), got.Body().AppendJSON(nil, FormatRasa))
			} else if !errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrNotRepresentable) {
				t.Errorf("line %d: error %v wraps no sentinel", n, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("line %d: %s: %v", n, in.Str(), err)
			continue
		}
		if b := string(got.Body().AppendJSON(nil, FormatRasa)); b != want.Str() {
			t.Errorf("line %d: %s\n got %s\nwant %s", n, in.Str(), b, want.Str())
		}
		// Canonical is idempotent: Rasa loads its own as_dict back unchanged.
		again, err := Canonical(got, now)
		if err != nil || !Equal(again.Body(), got.Body()) {
			t.Errorf("line %d: not idempotent: %v", n, err)
		}
		if got.SenderID != "c" {
			t.Errorf("line %d: sender lost", n)
		}
	}
	if n < 50 || errs == 0 {
		t.Fatalf("only %d vectors (%d errors) read", n, errs)
	}
}

func TestCanonicalFillsTimestampOnlyWhenFalsy(t *testing.T) {
	ev, _ := Parse([]byte(`{"event":"pause","timestamp":1700000000}`))
	c, err := Canonical(ev, func() float64 { t.Fatal("now called"); return 0 })
	if err != nil || string(c.Body().AppendJSON(nil, FormatRasa)) != `{"event": "pause", "timestamp": 1700000000}` {
		t.Fatalf("%v %s", err, c.Body().AppendJSON(nil, FormatRasa))
	}
	ev, _ = Parse([]byte(`{"event":"pause"}`))
	c, _ = Canonical(ev, func() float64 { return 5.5 })
	if got := string(c.Body().AppendJSON(nil, FormatRasa)); got != `{"event": "pause", "timestamp": 5.5}` {
		t.Fatal(got)
	}
}

func TestIsoformatRefusesWhatItCannotRead(t *testing.T) {
	for _, s := range []string{"tomorrow", "2018-02-30", "2018-09-03T25:00:00", "2018-09-03T11:41:10+25:00"} {
		if _, err := isoformat(StringValue(s)); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("%q: %v", s, err)
		}
	}
}
