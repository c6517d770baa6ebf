package privacy

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

const testYAML = `
privacy:
  rules:
    - slot: credit_card_number
      anonymization:
        type: redact
        redaction_char: "#"
        keep_right: 4
    - slot: email
      anonymization:
        type: mask
    - entity: person
      anonymization:
        type: hash
    - recognizer: phone
      anonymization:
        type: mask
    - recognizer: iban
  rule_lists:
    - id: emails_only
      rules:
        - slot: email
event_broker:
  - type: file
    path: a.log
  - type: file
    path: b.log
    privacy: none
  - type: file
    path: c.log
    privacy: emails_only
`

func testConfig(t testing.TB, yml string) *Config {
	t.Helper()
	t.Setenv(DefaultHashKeyEnv, "0123456789abcdef0123456789abcdef")
	ep, err := config.Parse("endpoints.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustEvent(t *testing.T, s string) event.Event {
	t.Helper()
	ev, err := event.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	ev, err = event.FromRasa("id", ev.RasaJSON())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestConfigSelection(t *testing.T) {
	c := testConfig(t, testYAML)
	if got := c.Brokers; len(got) != 3 || got[0] != DefaultSet || got[1] != "" || got[2] != "emails_only" {
		t.Fatalf("Brokers = %q", got)
	}
	if c.Set(1) != nil || c.Set(0) == nil || c.Set(2).ID != "emails_only" || !c.Active() {
		t.Fatal("Set: wrong rule sets")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ yml, want string }{
		{"privacy:\n  rules:\n    - slot: a\n      anonymization:\n        type: scramble\n", "endpoints.yml:5: privacy.rules[0].anonymization.type: unknown anonymization type \"scramble\""},
		{"privacy:\n  rules:\n    - slot: a\n      entity: b\n", "endpoints.yml:3: privacy.rules[0]: a rule names exactly one of slot, entity or recognizer"},
		{"privacy:\n  rules:\n    - recognizer: passport\n", "endpoints.yml:3: privacy.rules[0].recognizer: unknown recognizer \"passport\""},
		{"privacy:\n  rules:\n    - slot: a\n      anonymization:\n        redaction_char: \"##\"\n", "endpoints.yml:5: privacy.rules[0].anonymization.redaction_char: must be one character"},
		{"privacy:\n  rules:\n    - slot: a\nevent_broker:\n  type: file\n  privacy: analytics\n", "endpoints.yml:6: event_broker.privacy: no rule list \"analytics\""},
		{"privacy:\n  hold: 5s\n", "endpoints.yml:2: privacy.hold: must be at most 1s"},
		{"privacy:\n  hash_key_env: PARLEY_TEST_UNSET_KEY\n  rules:\n    - slot: a\n      anonymization: {type: hash}\n", "endpoints.yml:2: privacy.hash_key_env: no hash key"},
	}
	for _, tc := range tests {
		ep, err := config.Parse("endpoints.yml", []byte(tc.yml))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseConfig(ep.Section("privacy"), ep.EventBrokers)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config\n%s\nerror = %v\nwant it to contain %q", tc.yml, err, tc.want)
		}
		if strings.Contains(tc.want, "hash key") && !errors.Is(err, ErrNoHashKey) && !strings.Contains(err.Error(), ErrNoHashKey.Error()) {
			t.Errorf("hash key error does not name ErrNoHashKey: %v", err)
		}
	}
}

func TestAnonymizeTurn(t *testing.T) {
	c := testConfig(t, testYAML)
	a, err := New(c, Env{})
	if err != nil {
		t.Fatal(err)
	}
	// The user message comes before the slot events that name its values.
	in := []event.Event{
		mustEvent(t, `{"sender_id":"s1","event":"user","timestamp":1.5,"text":"my card is 4111 1111 1111 1111, mail JANE@example.com, call +49 30 1234567, I am Jane Roe","parse_data":{"intent":{"name":"inform","confidence":0.9},"entities":[{"entity":"person","value":"Jane Roe","start":67,"end":75}]},"metadata":{"note":"iban DE89 3704 0044 0532 0130 00"}}`),
		mustEvent(t, `{"sender_id":"s1","event":"slot","timestamp":1.6,"name":"credit_card_number","value":"4111 1111 1111 1111"}`),
		mustEvent(t, `{"sender_id":"s1","event":"slot","timestamp":1.7,"name":"email","value":"jane@example.com"}`),
		mustEvent(t, `{"sender_id":"s1","event":"bot","timestamp":1.8,"text":"Thanks Jane Roe, we wrote to jane@example.com","data":{},"metadata":{}}`),
		mustEvent(t, `{"sender_id":"s2","event":"user","timestamp":2.0,"text":"nothing to see","parse_data":{}}`),
	}
	b := a.Broker(c.Set(0), nil)
	out, err := b.Anonymize(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, ev := range out {
		all += string(ev.RasaJSON()) + "\n"
	}
	t.Logf("anonymized:\n%s", all)
	for _, pii := range []string{"4111", "jane@example.com", "JANE@example.com", "1234567", "Jane Roe", "DE89", "0532"} {
		if strings.Contains(all, pii) {
			t.Errorf("%q still in\n%s", pii, all)
		}
	}
	if !strings.Contains(all, `"value": "#### #### #### 1111"`) {
		t.Errorf("slot not redacted as Rasa does:\n%s", all)
	}
	if !strings.Contains(all, `mail EMAIL, call PHONE`) {
		t.Errorf("email or phone not masked in the user text:\n%s", all)
	}
	// Untouched events and fields keep their exact bytes.
	if !bytes.Equal(out[4].RasaJSON(), in[4].RasaJSON()) {
		t.Errorf("an event without PII changed: %s", out[4].RasaJSON())
	}
	if !strings.HasPrefix(string(out[0].RasaJSON()), `{"sender_id": "s1", "event": "user", "timestamp": 1.5, "text": "my card is #### #### #### 1111, mail EMAIL, call PHONE, I am `) {
		t.Errorf("user event: %s", out[0].RasaJSON())
	}
	// The hash of an entity value is the same wherever it appears.
	h := c.Sets[DefaultSet].byEntity["person"].Anonymization.apply("Jane Roe")
	if strings.Count(all, h) != 3 {
		t.Errorf("hash %s of the person entity appears %d times, want 3 (text, entity, bot):\n%s", h, strings.Count(all, h), all)
	}
	// A later batch still knows the values.
	later, err := b.Anonymize(context.Background(), []event.Event{mustEvent(t, `{"sender_id":"s1","event":"user","text":"is jane@example.com right?"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(later[0].RasaJSON()); got != `{"sender_id": "s1", "event": "user", "text": "is EMAIL right?"}` {
		t.Errorf("later turn: %s", got)
	}
}

func TestSpliceKeepsBytes(t *testing.T) {
	// Non-canonical bytes (spacing, escapes) outside the changed field stay.
	raw := []byte(`{"sender_id":"x",  "event" : "user", "text": "secret", "metadata": {"k": "\u00e9"}}`)
	out, err := splice(raw, map[string]event.Value{"text": event.StringValue("S")})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"sender_id":"x",  "event" : "user", "text": "S", "metadata": {"k": "\u00e9"}}`; string(out) != want {
		t.Errorf("splice = %s\nwant     %s", out, want)
	}
}
