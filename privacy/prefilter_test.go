package privacy

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// TestPrefilterHidesNothing checks the byte prefilter against the full
// rewrite: every event the rewrite changes, the prefilter lets through.
func TestPrefilterHidesNothing(t *testing.T) {
	c := testConfig(t, testYAML)
	set := c.Set(0)
	var raws [][]byte
	raws = append(raws, fixtures.RasaBytes()...)
	pii := []string{"jane@example.com", "+49 30 1234567", "(415) 555-0132", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "Jane Roe", "07700 900123"}
	for i, p := range pii {
		for _, tmpl := range []string{
			`{"sender_id": "s%d", "event": "user", "text": "it is %s", "parse_data": {}}`,
			`{"sender_id": "s%d", "event": "bot", "text": "x", "metadata": {"deep": [{"note": "%s"}]}}`,
			`{"event":"slot","sender_id":"s%d","name":"email","value":"%s"}`,
			`{"sender_id": "s%d", "event": "entities", "entities": [{"entity": "person", "value": "%s"}]}`,
			`{"sender_id": "s%d", "timestamp": 1700000000.123456, "event": "user", "text": "%s"}`,
			`{"sender_id": "s%d", "event": "user", "text": "on 2026-11-22 call %s", "date_time": "2026-11-22T11:41:10.128172", "t": "at 11:41:10.12817 or %[2]s"}`,
		} {
			raws = append(raws, []byte(fmt.Sprintf(tmpl, i, p)))
		}
	}
	known := []Learned{{Name: "email", Value: "jane@example.com"}, {Name: "person", Value: "Jane Roe"}}
	for _, raw := range raws {
		ev, err := event.FromRasa("id", raw)
		if err != nil {
			t.Fatal(err)
		}
		fast, slow := newRewriter(set, 3), newRewriter(set, 3)
		slow.thorough = true
		fast.setKnown(known)
		slow.setKnown(known)
		a, _, err1 := fast.event(ev, set.names.in(raw))
		b, _, err2 := slow.event(ev, true)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(a.RasaJSON(), b.RasaJSON()) {
			t.Errorf("the prefilter hid a change:\n in %s\nfast %s\nfull %s", raw, a.RasaJSON(), b.RasaJSON())
		}
	}
}

func TestIsSlotEvent(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"sender_id": "a", "event": "slot", "name": "x"}`:        true,
		`{"sender_id": "a", "event": "user", "text": "slot"}`:     false,
		`{"sender_id": "a", "event": "user", "text": "\"slot\""}`: false,
		`{"event":"slot","sender_id":"a"}`:                        true,
		`{"sender_id": "a\"b", "event": "slot"}`:                  true,
	} {
		if got := isSlotEvent([]byte(raw)); got != want {
			t.Errorf("isSlotEvent(%s) = %v", raw, got)
		}
	}
}

func TestHasDigit(t *testing.T) {
	for i := 0; i < 256; i++ {
		for pos := 0; pos < 8; pos++ {
			w := uint64(0x4141414141414141) &^ (0xff << (8 * pos)) // "AAAAAAAA" with one byte replaced
			w |= uint64(i) << (8 * pos)
			want := i >= '0' && i <= '9'
			if got := hasDigit(w); got != want {
				t.Fatalf("hasDigit with byte %#x at %d = %v", i, pos, got)
			}
		}
	}
	if !hasEntityKey([]byte(`{"a": [{"entity": "x"}]}`)) || hasEntityKey([]byte(`{"entities": [], "policy": "y"}`)) || !hasEntityKey([]byte(`{"entity":"x"}`)) {
		t.Error("hasEntityKey")
	}
}
