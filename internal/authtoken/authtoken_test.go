package authtoken

import (
	"net/http/httptest"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		target, header string
		ok             bool
	}{
		{"/?token=t", "", true},
		{"/", "Bearer t", true},
		{"/", "bearer t", true},
		{"/", "BeArEr   t  ", true},
		{"/", "Basic t", false},
		{"/", "Bearer", false},
		{"/", "Bearert", false},
		{"/", "Bearer u", false},
		{"/?token=u", "Bearer t", false}, // ?token= is Rasa's and wins
		{"/", "", false},
	} {
		r := httptest.NewRequest("GET", c.target, nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		if got := Check(r, "t"); got != c.ok {
			t.Errorf("%s %q: %v, want %v", c.target, c.header, got, c.ok)
		}
	}
	if !Check(httptest.NewRequest("GET", "/", nil), "") {
		t.Error("no token configured must let requests through")
	}
}
