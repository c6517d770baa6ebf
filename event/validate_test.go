package event

import (
	"errors"
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		in     string
		fields []string // fields named in the error, in order; nil = valid
	}{
		{`{"sender_id":"s","event":"bot","timestamp":1}`, nil},
		{`{"sender_id":"s","event":"whatever_new","timestamp":1,"x":[]}`, nil},
		{`{"sender_id":"s","timestamp":1}`, []string{"event"}},
		{`{"sender_id":"s","event":7,"timestamp":1}`, []string{"event"}},
		// No timestamp (or null) is published as given, as Rasa's brokers do.
		{`{"sender_id":"s","event":"bot"}`, nil},
		{`{"sender_id":"s","event":"bot","timestamp":null}`, nil},
		{`{"sender_id":"s","event":"bot","timestamp":"1700000000"}`, []string{"timestamp"}},
		{`{"sender_id":"s","event":"bot","timestamp":1,"metadata":[]}`, []string{"metadata"}},
		{`{"sender_id":"s","event":"user","timestamp":1,"text":5,"parse_data":"x"}`, []string{"text", "parse_data"}},
		{`{"sender_id":"s","event":"slot","timestamp":1,"value":1}`, []string{"name"}},
		{`{"sender_id":"s","event":"action","timestamp":1,"name":"a","confidence":"high"}`, []string{"confidence"}},
		{`{"event":"bot","timestamp":1}`, []string{"sender_id"}},
		{`{"event":"bot","timestamp":"x"}`, []string{"sender_id", "timestamp"}},
	}
	for _, c := range cases {
		ev, err := Parse([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		err = ev.ValidateForPublish()
		if c.fields == nil {
			if err != nil {
				t.Errorf("%s: unexpected %v", c.in, err)
			}
			continue
		}
		var ve ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: got %v, want ValidationError", c.in, err)
			continue
		}
		if len(ve) != len(c.fields) {
			t.Errorf("%s: got %v, want fields %v", c.in, err, c.fields)
			continue
		}
		for i, f := range c.fields {
			if ve[i].Field != f {
				t.Errorf("%s: error %d names %q, want %q (%v)", c.in, i, ve[i].Field, f, err)
			}
		}
	}
}

func TestEveryRasaTypeInFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range fixtures.Events() {
		ev, err := Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		seen[ev.Type()] = true
	}
	for typ := range typeSpecs {
		if typ == TypeForm || typ == TypeFormValidation {
			continue
		}
		if !seen[typ] {
			t.Errorf("type %q is not covered by the fixtures", typ)
		}
	}
}
