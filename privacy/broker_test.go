package privacy_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	filebroker "github.com/parleyhq/parley/broker/file"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/privacy"
	"github.com/parleyhq/parley/spool"
)

// typicalRules is a rule set like a deployment's: slots, entities and
// every built-in recognizer.
const typicalRules = `
privacy:
  rules:
    - slot: credit_card_number
      anonymization: {type: redact, keep_right: 4}
    - slot: email
      anonymization: {type: mask}
    - entity: person
      anonymization: {type: mask}
    - recognizer: email
      anonymization: {type: mask}
    - recognizer: phone
      anonymization: {type: mask}
    - recognizer: credit_card
    - recognizer: iban
event_broker:
  type: file
`

func typicalConfig(t testing.TB) *privacy.Config {
	t.Helper()
	ep, err := config.Parse("endpoints.yml", []byte(typicalRules))
	if err != nil {
		t.Fatal(err)
	}
	c, err := privacy.ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConformance runs the broker suite on the anonymizing wrapper over a
// file broker: the suite's events carry no PII, so they must arrive with
// Rasa's exact bytes, in order, with Close and errors passed through.
func TestConformance(t *testing.T) {
	c := typicalConfig(t)
	brokertest.Run(t, brokertest.Harness{
		Features: brokertest.Features{GlobalOrder: true},
		Open: func(t *testing.T) brokertest.Destination {
			path := filepath.Join(t.TempDir(), "rasa_event.log")
			fb, err := filebroker.Open(filebroker.Config{Path: path}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			a, err := privacy.New(c, privacy.Env{})
			if err != nil {
				t.Fatal(err)
			}
			b := a.Wrap([]broker.Named{{Name: "file", Broker: fb}})[0].Broker
			if _, ok := b.(*privacy.Broker); !ok {
				t.Fatalf("the broker was not wrapped: %T", b)
			}
			return brokertest.Destination{Broker: b, Read: func(context.Context, int) ([]brokertest.Message, error) {
				data, err := os.ReadFile(path)
				var out []brokertest.Message
				for _, l := range bytes.Split(data, []byte("\n")) {
					if len(l) > 0 {
						out = append(out, brokertest.Message{Body: l})
					}
				}
				return out, err
			}}
		},
	})
}

// TestMetricsPerRule checks /metrics counts anonymized values per rule.
func TestMetricsPerRule(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := privacy.New(typicalConfig(t), privacy.Env{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	rec := brokertest.NewRecorder()
	b := a.Wrap([]broker.Named{{Name: "r", Broker: rec}})[0].Broker
	ev, _ := event.Parse([]byte(`{"sender_id":"m","event":"user","text":"a@b.example or c@d.example, +1 415 555 0132"}`))
	if err := b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP parley_privacy_anonymized_fields_total Values anonymized in events sent to brokers, by rule set and rule (slot:NAME, entity:NAME, recognizer:NAME).
# TYPE parley_privacy_anonymized_fields_total counter
parley_privacy_anonymized_fields_total{rule="recognizer:email",rule_set="default"} 2
parley_privacy_anonymized_fields_total{rule="recognizer:phone",rule_set="default"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "parley_privacy_anonymized_fields_total"); err != nil {
		t.Error(err)
	}
}

// TestLogHandler checks recognizable PII is cleaned from log messages and
// attributes, errors included.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	set := typicalConfig(t).LogSet()
	log := slog.New(privacy.LogHandler(slog.NewJSONHandler(&buf, nil), set)).With("who", "jane@example.com")
	log.Warn("publish failed for +44 20 7946 0958", "err", errors.New("kafka: value 4111 1111 1111 1111 too large"), slog.Group("g", "iban", "DE89 3704 0044 0532 0130 00"))
	out := buf.String()
	for _, pii := range []string{"jane@example.com", "7946", "4111 1111", "DE89"} {
		if strings.Contains(out, pii) {
			t.Errorf("log line still holds %q: %s", pii, out)
		}
	}
	if !strings.Contains(out, "EMAIL") || !strings.Contains(out, "PHONE") || !strings.Contains(out, "**** **** **** **** too large") {
		t.Errorf("log line not anonymized as the rules say: %s", out)
	}
}

// TestDeadLettersAnonymized checks a broker that receives anonymized
// events gets anonymized dead letters: the event and the error text.
func TestDeadLettersAnonymized(t *testing.T) {
	a, err := privacy.New(typicalConfig(t), privacy.Env{})
	if err != nil {
		t.Fatal(err)
	}
	rec := brokertest.NewRecorder()
	rec.FailNext = 1 << 30
	rec.Err = broker.Permanent(errors.New("rejected: jane@example.com"))
	brokers := a.Wrap([]broker.Named{{Name: "rec", Broker: rec}})
	cfg, err := spool.ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sp, err := spool.Open(ctx, cfg, brokers, spool.WithLogger(slog.New(slog.DiscardHandler)), spool.WithDeadLetterRewrite(a.DeadLetter))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	ev, _ := event.Parse([]byte(`{"sender_id":"d","event":"slot","name":"email","value":"jane@example.com"}`))
	if err := sp.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	path := spool.DeadLetterPath(cfg.Dir, "rec")
	var dls []spool.DeadLetter
	for len(dls) == 0 && ctx.Err() == nil {
		dls, _ = spool.ReadDeadLetters(path)
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if len(dls) != 1 {
		t.Fatalf("dead letters: %v", dls)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("jane@example.com")) {
		t.Errorf("dead letter holds the email: %s", raw)
	}
	if string(dls[0].Event) != `{"sender_id": "d", "event": "slot", "name": "email", "value": "EMAIL"}` || !strings.HasSuffix(dls[0].Error, "rejected: EMAIL") {
		t.Errorf("dead letter: event %s, error %q", dls[0].Event, dls[0].Error)
	}
}
