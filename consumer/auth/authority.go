package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Client is a client allowed to request tokens (an entry of
// consumer_api.clients).
type Client struct {
	// ID is the OAuth2 client_id (key client_id).
	ID string
	// SecretHash is HashSecret's output for the client secret (key
	// client_secret_hash); secrets are never stored in clear.
	SecretHash string
	// Topics the client may read (key topics); the first is the topic
	// its tokens imply.
	Topics []string
	// Groups are the consumer groups reserved for the client (key
	// groups; a trailing * matches a prefix). A client with a list may
	// use only those; groups no client lists belong to the first client
	// that uses them.
	Groups []string
}

// MixScope is Nuance Mix's scope for reading event logs: it grants the
// topics configured for the client, as no scope does.
const MixScope = "log"

// OAuth2 errors of the token endpoint (RFC 6749 section 5.2).
var (
	// ErrInvalidClient: unknown client or wrong secret.
	ErrInvalidClient = errors.New("invalid_client")
	// ErrInvalidScope: the scope names a topic the client may not read.
	ErrInvalidScope = errors.New("invalid_scope")
)

// Authority issues and checks the consumer API's access tokens.
type Authority struct {
	clients   map[string]Client
	signer    *Signer
	ttl       time.Duration
	now       func() time.Time
	ephemeral bool
	dummy     string // a hash to verify against for unknown clients
}

// NewAuthority makes an Authority for clients. An empty key makes a random
// one (Ephemeral reports it: tokens then die with the process). now may be
// nil.
func NewAuthority(clients []Client, key []byte, ttl time.Duration, now func() time.Time) (*Authority, error) {
	if now == nil {
		now = time.Now
	}
	a := &Authority{clients: map[string]Client{}, ttl: ttl, now: now}
	iter := DefaultIterations
	for _, c := range clients {
		p, err := parseHash(c.SecretHash)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		a.clients[c.ID] = c
		iter = p.iterations
	}
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		a.ephemeral = true
	}
	a.signer = NewSigner(key, now)
	if len(clients) > 0 {
		// Unknown client IDs are checked against a hash of the same
		// cost, so that response time does not reveal which IDs exist.
		dummy, err := HashSecretCost("parley-unknown-client", iter)
		if err != nil {
			return nil, err
		}
		a.dummy = dummy
	}
	return a, nil
}

// Enabled reports whether any client is configured; without clients the
// API is open (to loopback callers only).
func (a *Authority) Enabled() bool { return len(a.clients) > 0 }

// Ephemeral reports that the signing key was generated at start-up.
func (a *Authority) Ephemeral() bool { return a.ephemeral }

// Token is an issued access token.
type Token struct {
	AccessToken string
	ExpiresIn   time.Duration
	Claims      Claims
}

// Issue authenticates a client (the client credentials grant) and returns
// a token for the requested topics, space-separated in scope; an empty
// scope, or Mix's "log", grants every topic the client may read.
func (a *Authority) Issue(clientID, secret, scope string) (Token, error) {
	c, ok := a.clients[clientID]
	if !ok {
		VerifySecret(a.dummy, secret)
		return Token{}, fmt.Errorf("%w: unknown client or wrong secret", ErrInvalidClient)
	}
	if !VerifySecret(c.SecretHash, secret) {
		return Token{}, fmt.Errorf("%w: unknown client or wrong secret", ErrInvalidClient)
	}
	topics := c.Topics
	requested := slices.DeleteFunc(strings.Fields(scope), func(w string) bool { return w == MixScope })
	if len(requested) > 0 {
		for _, t := range requested {
			if !slices.Contains(c.Topics, t) {
				return Token{}, fmt.Errorf("%w: client %q may not read topic %q", ErrInvalidScope, clientID, t)
			}
		}
		topics = slices.Compact(requested)
	}
	now := a.now()
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	claims := Claims{
		Issuer:   Issuer,
		Subject:  clientID,
		Audience: Audience,
		IssuedAt: now.Unix(),
		Expires:  now.Add(a.ttl).Unix(),
		ID:       hex.EncodeToString(jti),
		Scope:    strings.Join(topics, " "),
		Topics:   topics,
	}
	tok, err := a.signer.Sign(claims)
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: tok, ExpiresIn: a.ttl, Claims: claims}, nil
}

// Verify checks a bearer token and returns its claims.
func (a *Authority) Verify(token string) (Claims, error) {
	c, err := a.signer.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	cl, ok := a.clients[c.Subject]
	if !ok {
		// The client was removed from endpoints.yml since.
		return Claims{}, fmt.Errorf("%w: client %q is no longer configured", ErrInvalidClient, c.Subject)
	}
	// Topics taken from the client since the token was issued are no
	// longer granted.
	c.Topics = slices.DeleteFunc(c.Topics, func(t string) bool { return !slices.Contains(cl.Topics, t) })
	return c, nil
}

// Signer returns the token signer (tests forge expired tokens with it).
func (a *Authority) Signer() *Signer { return a.signer }
