package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The anonymization types of a rule (endpoints.yml `anonymization.type`).
const (
	// TypeRedact replaces each letter and digit with the redaction
	// character (default "*"), keeping keep_left and keep_right characters
	// and every separator, as Rasa Pro 3.13 does:
	// 1234-5678-9012-3456 with keep_right 4 becomes ****-****-****-3456.
	TypeRedact = "redact"
	// TypeMask replaces the whole value with the rule's name in upper case
	// (the slot's, entity's or recognizer's), as Rasa Pro 3.13 does.
	TypeMask = "mask"
	// TypeHash replaces the value with a keyed HMAC-SHA-256 of it (32 hex
	// digits), a parley addition: equal values give equal hashes, so
	// analysts can still join and count distinct values.
	TypeHash = "hash"
)

// Anonymization is how a rule replaces a value.
type Anonymization struct {
	Type          string
	RedactionChar string // TypeRedact: default "*"
	KeepLeft      int    // TypeRedact: characters kept on the left, default 0
	KeepRight     int    // TypeRedact: characters kept on the right, default 0
	label         string // TypeMask's replacement
	key           []byte // TypeHash's HMAC key
}

// apply returns the anonymized form of v.
func (a *Anonymization) apply(v string) string {
	switch a.Type {
	case TypeMask:
		return a.label
	case TypeHash:
		m := hmac.New(sha256.New, a.key)
		m.Write([]byte(v))
		sum := m.Sum(nil)
		return hex.EncodeToString(sum[:16])
	}
	return redact(v, a.RedactionChar, a.KeepLeft, a.KeepRight)
}

// redact replaces letters and digits of v with ch, but for the first left
// and last right characters; separators (spaces, dashes, dots, @) stay so
// the shape of the value is kept, as in Rasa's example.
func redact(v, ch string, left, right int) string {
	n := utf8.RuneCountInString(v)
	var b strings.Builder
	b.Grow(len(v))
	i := 0
	for _, r := range v {
		switch {
		case i < left || i >= n-right:
			b.WriteRune(r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteString(ch)
		default:
			b.WriteRune(r)
		}
		i++
	}
	return b.String()
}
