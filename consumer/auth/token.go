package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Token errors; the HTTP layer answers each with 401.
var (
	// ErrMalformedToken: not a JWT parley could have issued.
	ErrMalformedToken = errors.New("malformed token")
	// ErrBadSignature: the signature does not match (another key, or a
	// tampered token).
	ErrBadSignature = errors.New("token signature is invalid")
	// ErrTokenExpired: the token's exp has passed.
	ErrTokenExpired = errors.New("token has expired")
)

// Issuer and Audience are written to and required in every token, so that
// a token signed with the same key for another purpose is refused.
const (
	Issuer   = "parley"
	Audience = "parley-consumer-api"
)

// Claims are the JWT claims of an access token.
type Claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"` // the client_id
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	ID       string `json:"jti,omitempty"`
	// Scope is OAuth2's space-separated scope: the topics granted.
	Scope string `json:"scope"`
	// Topics are the topics the token may read, the first being the topic
	// it implies where a request names none (as Mix's tokens imply an app
	// ID's topic).
	Topics []string `json:"topics"`
}

// Allows reports whether the token may read topic.
func (c Claims) Allows(topic string) bool { return slices.Contains(c.Topics, topic) }

// ExpiresAt returns the expiry as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0) }

// Signer signs and verifies HS256 JSON Web Tokens (RFC 7519) with one key.
// It accepts exactly the header it writes, so "alg": "none" and algorithm
// confusion are refused by construction.
type Signer struct {
	key []byte
	now func() time.Time
}

// header is the only JWT header parley writes or accepts.
var header = b64url.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

var b64url = base64.RawURLEncoding

// NewSigner returns a Signer for key; now may be nil (time.Now).
func NewSigner(key []byte, now func() time.Time) *Signer {
	if now == nil {
		now = time.Now
	}
	return &Signer{key: bytes.Clone(key), now: now}
}

// Sign encodes and signs c.
func (s *Signer) Sign(c Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := header + "." + b64url.EncodeToString(payload)
	return signing + "." + b64url.EncodeToString(s.mac(signing)), nil
}

func (s *Signer) mac(signing string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signing))
	return m.Sum(nil)
}

// Verify checks the token's signature, issuer, audience and expiry and
// returns its claims.
func (s *Signer) Verify(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: want three dot-separated parts", ErrMalformedToken)
	}
	sig, err := b64url.DecodeString(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature is not base64url", ErrMalformedToken)
	}
	if !hmac.Equal(sig, s.mac(parts[0]+"."+parts[1])) {
		return Claims{}, ErrBadSignature
	}
	// Signed by us, so the header is ours; check anyway in case the key
	// is shared with another issuer.
	if parts[0] != header {
		return Claims{}, fmt.Errorf("%w: unsupported header (only HS256)", ErrMalformedToken)
	}
	payload, err := b64url.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload is not base64url", ErrMalformedToken)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformedToken, err)
	}
	if c.Issuer != Issuer || c.Audience != Audience {
		return Claims{}, fmt.Errorf("%w: not issued for the parley consumer API", ErrMalformedToken)
	}
	if !s.now().Before(c.ExpiresAt()) {
		return Claims{}, ErrTokenExpired
	}
	return c, nil
}
