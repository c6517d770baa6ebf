package privacy_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/parleyhq/parley/cli"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/server"
)

// TestConfigCheck runs `parley config check` on a privacy section: errors
// name the file, line and key; a valid one says what each broker gets.
func TestConfigCheck(t *testing.T) {
	t.Chdir(t.TempDir())
	check := func(yml string) (string, error) {
		if err := os.WriteFile("endpoints.yml", []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		root := cli.New()
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"config", "check"})
		err := root.Execute()
		return out.String(), err
	}
	bad := "event_broker:\n  - type: file\n    privacy: analytics\nprivacy:\n  rules:\n    - slot: iban\n      anonymization:\n        type: scramble\n        keep_rigth: 4\n"
	_, err := check(bad)
	if err == nil {
		t.Fatal("config check accepted a bad privacy section")
	}
	for _, want := range []string{
		`endpoints.yml:8: privacy.rules[0].anonymization.type: unknown anonymization type "scramble"`,
		`endpoints.yml:3: event_broker[0].privacy: no rule list "analytics"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	good := "event_broker:\n  - type: file\n  - type: file\n    path: raw.log\n    privacy: none\nprivacy:\n  rules:\n    - slot: iban\n      anonymization:\n        type: redact\n        keep_rigth: 4\n"
	out, err := check(good)
	if err != nil {
		t.Fatalf("config check: %v", err)
	}
	for _, want := range []string{
		`privacy: broker file#1 receives events anonymized by rule list "default" (1 rules)`,
		`privacy: broker file#2 receives pristine events`,
		`endpoints.yml:11: privacy.rules[0].anonymization.keep_rigth: unknown key for type anonymization, ignored`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestPublishAndExportApplyRules checks `parley publish` and `parley
// export` send each broker its rule list's events, as serve does, and
// `export: false` exports pristine events.
func TestPublishAndExportApplyRules(t *testing.T) {
	t.Chdir(t.TempDir())
	run := func(args ...string) {
		t.Helper()
		root := cli.New()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("parley %v: %v\n%s", args, err, out.String())
		}
	}
	yml := "event_broker:\n  - type: file\n    path: anon.log\n  - type: file\n    path: raw.log\n    privacy: none\n" +
		"tracker_store:\n  type: sql\n  db: rasa.db\n" +
		"privacy:\n  rules:\n    - slot: email\n      anonymization: {type: mask}\n    - recognizer: phone\n      anonymization: {type: mask}\n"
	if err := os.WriteFile("endpoints.yml", []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	events := `{"sender_id":"p","event":"user","timestamp":1.0,"text":"mail jane@example.com, call +44 20 7946 0958"}` + "\n" +
		`{"sender_id":"p","event":"slot","timestamp":2.0,"name":"email","value":"jane@example.com"}` + "\n"
	if err := os.WriteFile("in.ndjson", []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	run("publish", "in.ndjson")
	anon, _ := os.ReadFile("anon.log")
	raw, _ := os.ReadFile("raw.log")
	want := `{"sender_id": "p", "event": "user", "timestamp": 1.0, "text": "mail EMAIL, call PHONE"}` + "\n" +
		`{"sender_id": "p", "event": "slot", "timestamp": 2.0, "name": "email", "value": "EMAIL"}` + "\n"
	if string(anon) != want {
		t.Errorf("publish, anonymized broker:\n%s\nwant\n%s", anon, want)
	}
	if !strings.Contains(string(raw), "jane@example.com") || !strings.Contains(string(raw), "+44 20 7946 0958") {
		t.Errorf("publish, pristine broker:\n%s", raw)
	}

	// A conversation in the tracker store, written through serve.
	ep, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g, err := server.NewGateway(ctx, ep, server.GatewayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	g.Server.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/conversations/x/tracker/events",
		strings.NewReader(`[{"event":"user","timestamp":3.0,"text":"it is grace@navy.example","parse_data":{"intent":{"name":"inform"},"entities":[]}},{"event":"slot","timestamp":4.0,"name":"email","value":"grace@navy.example"}]`)))
	if w.Code != 200 {
		t.Fatalf("conversation API: %d %s", w.Code, w.Body)
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	os.Remove("anon.log")
	os.Remove("raw.log")
	run("export", "--conversation-ids", "x")
	anon, _ = os.ReadFile("anon.log")
	raw, _ = os.ReadFile("raw.log")
	if !strings.Contains(string(anon), `"text": "it is EMAIL"`) || !strings.Contains(string(anon), `"value": "EMAIL"`) || strings.Contains(string(anon), "grace@") {
		t.Errorf("export, anonymized broker:\n%s", anon)
	}
	// text, value, and parse_data.text, which Rasa's canonical user event adds.
	if strings.Count(string(raw), "grace@navy.example") != 3 {
		t.Errorf("export, pristine broker:\n%s", raw)
	}
}
