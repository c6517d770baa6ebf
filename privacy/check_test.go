package privacy_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/parleyhq/parley/cli"
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
