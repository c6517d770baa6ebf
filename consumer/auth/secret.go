package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// hashScheme prefixes every hash so that a later scheme (argon2id, say)
// can sit beside it in the same endpoints.yml.
const hashScheme = "pbkdf2-sha256"

// DefaultIterations is the PBKDF2-HMAC-SHA256 work factor of HashSecret,
// OWASP's 2023 recommendation. Hashing takes a few hundred milliseconds,
// paid once per token request, not per API call.
const DefaultIterations = 600_000

// minIterations refuses hashes too cheap to slow down guessing.
const minIterations = 1000

var b64 = base64.RawStdEncoding

// ErrBadHash is returned for a client_secret_hash that is not
// "pbkdf2-sha256$<iterations>$<salt>$<hash>".
var ErrBadHash = errors.New("not a parley secret hash")

// HashSecret hashes a client secret for endpoints.yml's
// client_secret_hash: PBKDF2-HMAC-SHA256 with a random 16-byte salt and
// DefaultIterations, written as
//
//	pbkdf2-sha256$600000$<salt, base64>$<hash, base64>
func HashSecret(secret string) (string, error) {
	return HashSecretCost(secret, DefaultIterations)
}

// HashSecretCost is HashSecret with a chosen iteration count (tests use a
// low one to stay fast).
func HashSecretCost(secret string, iterations int) (string, error) {
	if secret == "" {
		return "", errors.New("empty secret")
	}
	if iterations < minIterations {
		return "", fmt.Errorf("%d iterations is too few (at least %d)", iterations, minIterations)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum, err := pbkdf2.Key(sha256.New, secret, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s$%d$%s$%s", hashScheme, iterations, b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

type parsedHash struct {
	iterations int
	salt, sum  []byte
}

func parseHash(h string) (parsedHash, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[0] != hashScheme {
		return parsedHash{}, fmt.Errorf("%w: want %s$<iterations>$<salt>$<hash> (make one with `parley consume hash-secret`)", ErrBadHash, hashScheme)
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < minIterations {
		return parsedHash{}, fmt.Errorf("%w: iteration count %q must be a number of at least %d", ErrBadHash, parts[1], minIterations)
	}
	salt, err := b64.DecodeString(parts[2])
	if err != nil || len(salt) < 8 {
		return parsedHash{}, fmt.Errorf("%w: bad salt", ErrBadHash)
	}
	sum, err := b64.DecodeString(parts[3])
	if err != nil || len(sum) != sha256.Size {
		return parsedHash{}, fmt.Errorf("%w: bad hash", ErrBadHash)
	}
	return parsedHash{iterations: iter, salt: salt, sum: sum}, nil
}

// CheckHash reports whether h is a hash VerifySecret can use.
func CheckHash(h string) error {
	_, err := parseHash(h)
	return err
}

// VerifySecret reports whether secret matches hash h, in time that does
// not depend on where they differ.
func VerifySecret(h, secret string) bool {
	p, err := parseHash(h)
	if err != nil {
		return false
	}
	sum, err := pbkdf2.Key(sha256.New, secret, p.salt, p.iterations, len(p.sum))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sum, p.sum) == 1
}
