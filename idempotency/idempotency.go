// Package idempotency implements the Idempotency-Key request header
// (IETF draft-ietf-httpapi-idempotency-key-header) for parley's write
// endpoints: POST /events and the conversation API.
//
// A client that sends a key and retries the request after a lost response
// or a parley crash gets the first request's answer again, and the first
// request's effect happens once. The HTTP semantics live here; where the
// key is recorded is the caller's business, because it must be recorded
// atomically with the effect: POST /events records it in the spool batch
// that holds the events, the conversation API in the tracker store's
// transaction that saves the events. This package therefore has no store.
package idempotency

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Header is the request header that carries the key.
const Header = "Idempotency-Key"

// ReplayedHeader is set on a response that repeats a recorded outcome.
const ReplayedHeader = "Idempotent-Replayed"

// MaxKeyLen bounds a key, so that stores can index it cheaply.
const MaxKeyLen = 255

// DefaultWindow is how long a recorded outcome is kept: a retry later than
// this is a new request.
const DefaultWindow = 24 * time.Hour

var (
	// ErrInvalidKey: the header is empty, repeated, too long or holds
	// something other than printable ASCII. Answer 400.
	ErrInvalidKey = errors.New("invalid " + Header)
	// ErrMismatch: the key was used before for a different request
	// (another method, path or body). Answer 422, as the draft says.
	ErrMismatch = errors.New(Header + " was already used for a different request")
)

// FromRequest returns the request's key, or "" when it sends none. The
// draft's form is a structured-field string ("key"); the bare token that
// most clients send is taken as well.
func FromRequest(r *http.Request) (string, error) {
	vals := r.Header.Values(Header)
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%w: sent %d times", ErrInvalidKey, len(vals))
	}
	k := strings.TrimSpace(vals[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	return k, Validate(k)
}

// Validate checks a key: 1 to MaxKeyLen printable ASCII characters.
func Validate(k string) error {
	if k == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(k) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidKey, len(k), MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: byte %d is not printable ASCII", ErrInvalidKey, i)
		}
	}
	return nil
}

// Fingerprint identifies a request, so that a key reused for another
// request is caught: SHA-256 over the method, the path and the body.
func Fingerprint(method, path string, body []byte) [32]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(method), []byte(path), body} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var fp [32]byte
	h.Sum(fp[:0])
	return fp
}

// Outcome is the recorded answer to the first request with a key.
type Outcome struct {
	Fingerprint [32]byte
	Status      int
	Body        []byte // the JSON response body
	Created     time.Time
}

// Check returns ErrMismatch unless fp is the recorded request's.
func (o Outcome) Check(fp [32]byte) error {
	if o.Fingerprint != fp {
		return ErrMismatch
	}
	return nil
}

// Expired reports whether the outcome is older than window at now.
func (o Outcome) Expired(now time.Time, window time.Duration) bool {
	return now.Sub(o.Created) > window
}

// Replay writes the recorded answer again.
func (o Outcome) Replay(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(ReplayedHeader, "true")
	w.WriteHeader(o.Status)
	_, _ = w.Write(o.Body)
}

// outcomeVersion prefixes the binary form, for later changes.
const outcomeVersion = 1

// MarshalBinary encodes the outcome for a store: version, fingerprint,
// status, creation time in Unix nanoseconds, body.
func (o Outcome) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+32+2+8+len(o.Body))
	b = append(b, outcomeVersion)
	b = append(b, o.Fingerprint[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(o.Status))
	b = binary.BigEndian.AppendUint64(b, uint64(o.Created.UnixNano()))
	return append(b, o.Body...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (o *Outcome) UnmarshalBinary(b []byte) error {
	const head = 1 + 32 + 2 + 8
	if len(b) < head || b[0] != outcomeVersion {
		return errors.New("idempotency: malformed recorded outcome")
	}
	copy(o.Fingerprint[:], b[1:33])
	o.Status = int(binary.BigEndian.Uint16(b[33:35]))
	o.Created = time.Unix(0, int64(binary.BigEndian.Uint64(b[35:43])))
	o.Body = append([]byte(nil), b[head:]...)
	return nil
}

// Locks serializes the requests that carry one key inside a process, so a
// retry that arrives while the first attempt still runs waits for its
// outcome instead of racing it. Across processes the store's atomic record
// decides. The zero value is ready to use.
type Locks struct {
	mu   sync.Mutex
	held map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// Lock locks key and returns its unlock function.
func (l *Locks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.held == nil {
		l.held = make(map[string]*keyLock)
	}
	k := l.held[key]
	if k == nil {
		k = &keyLock{}
		l.held[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.held, key)
		}
		l.mu.Unlock()
	}
}
