package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHashSecret(t *testing.T) {
	h, err := HashSecretCost("s3cret", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "pbkdf2-sha256$1000$") || CheckHash(h) != nil {
		t.Fatalf("hash %q", h)
	}
	if !VerifySecret(h, "s3cret") || VerifySecret(h, "s3cret ") || VerifySecret(h, "") {
		t.Fatal("verification is wrong")
	}
	h2, _ := HashSecretCost("s3cret", 1000)
	if h2 == h {
		t.Fatal("two hashes of one secret are equal: no salt")
	}
	for _, bad := range []string{"", "plain", "pbkdf2-sha256$10$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "pbkdf2-sha256$1000$!!$x", "bcrypt$1$2$3"} {
		if CheckHash(bad) == nil || VerifySecret(bad, "s3cret") {
			t.Errorf("accepted hash %q", bad)
		}
	}
	if _, err := HashSecretCost("x", 10); err == nil {
		t.Fatal("accepted 10 iterations")
	}
	if _, err := HashSecret(""); err == nil {
		t.Fatal("hashed an empty secret")
	}
}

func TestSignerRefusesForgeries(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewSigner([]byte("key-key-key-key-key-key-key-key!"), func() time.Time { return now })
	valid := Claims{Issuer: Issuer, Audience: Audience, Subject: "a", Expires: now.Add(time.Minute).Unix(), Topics: []string{"t"}}
	tok, err := s.Sign(valid)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(tok)
	if err != nil || c.Subject != "a" || !c.Allows("t") || c.Allows("u") {
		t.Fatalf("verify: %+v %v", c, err)
	}
	parts := strings.Split(tok, ".")
	sign := func(c Claims) string { tok, _ := s.Sign(c); return tok }
	expired := valid
	expired.Expires = now.Unix()
	otherAud := valid
	otherAud.Audience = "else"
	cases := map[string]struct {
		tok  string
		want error
	}{
		"expired":        {sign(expired), ErrTokenExpired},
		"other audience": {sign(otherAud), ErrMalformedToken},
		"two parts":      {parts[0] + "." + parts[1], ErrMalformedToken},
		"alg none":       {"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", ErrBadSignature},
		"other key": {func() string {
			t, _ := NewSigner([]byte("another-key-another-key-another!"), nil).Sign(valid)
			return t
		}(), ErrBadSignature},
		"payload swapped": {parts[0] + "." + strings.Split(sign(expired), ".")[1] + "." + parts[2], ErrBadSignature},
		"bad base64":      {parts[0] + "." + parts[1] + ".***", ErrMalformedToken},
	}
	for name, c := range cases {
		if _, err := s.Verify(c.tok); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

func TestAuthorityIssue(t *testing.T) {
	h, _ := HashSecretCost("pw", 1000)
	a, err := NewAuthority([]Client{{ID: "c", SecretHash: h, Topics: []string{"t1", "t2"}}}, nil, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Enabled() || !a.Ephemeral() {
		t.Fatal("enabled with a generated key expected")
	}
	tok, err := a.Issue("c", "pw", "")
	if err != nil || strings.Join(tok.Claims.Topics, " ") != "t1 t2" || tok.Claims.Scope != "t1 t2" {
		t.Fatalf("issue: %+v %v", tok, err)
	}
	tok, err = a.Issue("c", "pw", "t2")
	if err != nil || strings.Join(tok.Claims.Topics, " ") != "t2" {
		t.Fatalf("narrow scope: %+v %v", tok, err)
	}
	c, err := a.Verify(tok.AccessToken)
	if err != nil || c.Allows("t1") || !c.Allows("t2") {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if _, err := a.Issue("c", "pw", "t3"); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
		t.Fatalf("scope outside: %v", err)
	}
	if _, err := a.Issue("c", "nope", ""); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := a.Issue("x", "pw", ""); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("unknown client: %v", err)
	}
	if _, err := NewAuthority([]Client{{ID: "c", SecretHash: "nope"}}, nil, time.Minute, nil); err == nil {
		t.Fatal("accepted a bad hash")
	}
}
