package kafka

import (
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
)

// The "want" lines are what Rasa 2's kafka-python broker published with
// convert_intent_id_to_string: true, made by running its
// _convert_intent_id_to_string and json.dumps in Python.
func TestConvertIntentID(t *testing.T) {
	cases := []struct{ in, want string }{
		{
			`{"sender_id": "s", "event": "user", "timestamp": 1.5, "text": "hi", "parse_data": {"intent": {"id": -1731541806890066121, "name": "affirm", "confidence": 0.23}, "intent_ranking": [{"id": 5, "name": "affirm"}]}}`,
			`{"sender_id": "s", "event": "user", "timestamp": 1.5, "text": "hi", "parse_data": {"intent": {"id": "-1731541806890066121", "name": "affirm", "confidence": 0.23}, "intent_ranking": [{"id": 5, "name": "affirm"}]}}`,
		},
		{
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": -1.731541806890066e+18, "name": "x"}}}`,
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": "-1.731541806890066e+18", "name": "x"}}}`,
		},
		{
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": true}}}`,
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": "True"}}}`,
		},
		{
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": null}}}`,
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": "None"}}}`,
		},
		{
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": "already"}}}`,
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"id": "already"}}}`,
		},
		{
			`{"sender_id": "s", "event": "bot", "parse_data": {"intent": {"id": 7}}}`,
			`{"sender_id": "s", "event": "bot", "parse_data": {"intent": {"id": 7}}}`,
		},
		{
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"name": "noid"}}}`,
			`{"sender_id": "s", "event": "user", "parse_data": {"intent": {"name": "noid"}}}`,
		},
		{
			`{"sender_id": "s", "event": "user", "parse_data": "odd"}`,
			`{"sender_id": "s", "event": "user", "parse_data": "odd"}`,
		},
	}
	for _, c := range cases {
		ev, err := event.Parse([]byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		got := convertIntentID(ev).RasaJSON()
		if string(got) != c.want {
			t.Errorf("convertIntentID(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
		if string(ev.RasaJSON()) != c.in {
			t.Errorf("the input event changed: %s", ev.RasaJSON())
		}
	}
}

func TestBuildRecords(t *testing.T) {
	ev1, _ := event.Parse([]byte(`{"sender_id": "Grüße", "event": "bot", "text": "ä"}`))
	ev1.ID = "id-1"
	ev1.Headers = map[string]string{"rasa-export-process-id": "abc", "b": "2", HeaderEventID: "spoofed"}
	ev2, _ := event.Parse([]byte(`{"sender_id": "", "event": "bot"}`))

	cases := []struct {
		name      string
		rb        recordBuilder
		wantValue string
		wantKey   *string // nil: no key
		wantHdrs  []string
		// headers of the second event, which has no ID
		wantHdrs2 int
	}{
		{
			name:      "rasa format, keyed, environment",
			rb:        recordBuilder{topic: "t", format: event.FormatRasa, keyBySender: true, env: []byte("prod"), maxBytes: DefaultMaxMessageBytes},
			wantValue: `{"sender_id": "Gr\u00fc\u00dfe", "event": "bot", "text": "\u00e4"}`,
			wantKey:   ptr("Grüße"),
			wantHdrs:  []string{"RASA_ENVIRONMENT=prod", "parley-event-id=id-1", "b=2", "rasa-export-process-id=abc"},
			wantHdrs2: 1,
		},
		{
			name:      "compact, no key, no environment header",
			rb:        recordBuilder{topic: "t", format: event.FormatCompact, maxBytes: DefaultMaxMessageBytes},
			wantValue: `{"sender_id":"Grüße","event":"bot","text":"ä"}`,
			wantHdrs:  []string{"parley-event-id=id-1", "b=2", "rasa-export-process-id=abc"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, err := c.rb.build([]event.Event{ev1, ev2})
			if err != nil {
				t.Fatal(err)
			}
			r := recs[0]
			if r.Topic != "t" || string(r.Value) != c.wantValue {
				t.Errorf("record: topic %q value %s, want %s", r.Topic, r.Value, c.wantValue)
			}
			if c.wantKey == nil && r.Key != nil || c.wantKey != nil && (r.Key == nil || string(r.Key) != *c.wantKey) {
				t.Errorf("key %q (nil %v), want %v", r.Key, r.Key == nil, c.wantKey)
			}
			var hdrs []string
			for _, h := range r.Headers {
				hdrs = append(hdrs, h.Key+"="+string(h.Value))
			}
			if strings.Join(hdrs, ",") != strings.Join(c.wantHdrs, ",") {
				t.Errorf("headers %v, want %v", hdrs, c.wantHdrs)
			}
			// The second event: no ID, so only the environment header;
			// an empty sender still makes a (non-nil, empty) key.
			r2 := recs[1]
			if len(r2.Headers) != c.wantHdrs2 {
				t.Errorf("second record headers %v", r2.Headers)
			}
			if c.rb.keyBySender && (r2.Key == nil || len(r2.Key) != 0) {
				t.Errorf("empty sender key = %#v, want empty non-nil", r2.Key)
			}
		})
	}
}

func TestBuildRefusesTooLarge(t *testing.T) {
	rb := recordBuilder{topic: "t", format: event.FormatRasa, maxBytes: 2048}
	small := mustEvent(t, "s", strings.Repeat("x", 100))
	big := mustEvent(t, "s", strings.Repeat("x", 3000))
	big.ID = "big-1"
	_, err := rb.build([]event.Event{small, big})
	if !errors.Is(err, broker.ErrPermanent) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want a permanent ErrTooLarge", err)
	}
	for _, want := range []string{"event 1", `"big-1"`, "max_message_bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := rb.build([]event.Event{small}); err != nil {
		t.Fatalf("small event refused: %v", err)
	}
}

func mustEvent(t testing.TB, sender, text string) event.Event {
	t.Helper()
	ev, err := event.New(sender, event.ObjectValue(
		event.Member{Key: "event", Value: event.StringValue("bot")},
		event.Member{Key: "text", Value: event.StringValue(text)},
	))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func ptr[T any](v T) *T { return &v }
