package idempotency

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFromRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   string
		err    bool
	}{
		{"absent", nil, "", false},
		{"bare", []string{"batch-42"}, "batch-42", false},
		{"sf-string", []string{`"8e03978e-40d5-43e8"`}, "8e03978e-40d5-43e8", false},
		{"empty", []string{""}, "", true},
		{"empty quoted", []string{`""`}, "", true},
		{"twice", []string{"a", "b"}, "", true},
		{"too long", []string{strings.Repeat("k", MaxKeyLen+1)}, "", true},
		{"longest", []string{strings.Repeat("k", MaxKeyLen)}, strings.Repeat("k", MaxKeyLen), false},
		{"control byte", []string{"a\x01b"}, "", true},
		{"non-ascii", []string{"schlüssel"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/events", nil)
			for _, v := range tc.values {
				r.Header.Add(Header, v)
			}
			got, err := FromRequest(r)
			if tc.err {
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("err = %v, want ErrInvalidKey", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FromRequest = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestFingerprintSeparatesParts(t *testing.T) {
	a := Fingerprint("POST", "/events", []byte("x"))
	if a != Fingerprint("POST", "/events", []byte("x")) {
		t.Fatal("fingerprint not deterministic")
	}
	// Moving a byte from the path into the body must change it.
	if a == Fingerprint("POST", "/event", []byte("sx")) || a == Fingerprint("PUT", "/events", []byte("x")) {
		t.Fatal("fingerprint collides across parts")
	}
	o := Outcome{Fingerprint: a}
	if err := o.Check(a); err != nil {
		t.Fatal(err)
	}
	if err := o.Check(Fingerprint("POST", "/events", []byte("y"))); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check = %v, want ErrMismatch", err)
	}
}

func TestOutcomeRoundTripAndReplay(t *testing.T) {
	o := Outcome{Fingerprint: Fingerprint("POST", "/events", []byte("b")), Status: 202, Body: []byte(`{"accepted":3}`), Created: time.Unix(1700000000, 123)}
	b, _ := o.MarshalBinary()
	var got Outcome
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != o.Fingerprint || got.Status != 202 || string(got.Body) != string(o.Body) || !got.Created.Equal(o.Created) {
		t.Fatalf("round trip: %+v != %+v", got, o)
	}
	if err := got.UnmarshalBinary(b[:10]); err == nil {
		t.Fatal("truncated outcome decoded")
	}
	if !o.Expired(o.Created.Add(DefaultWindow+time.Second), DefaultWindow) || o.Expired(o.Created.Add(time.Hour), DefaultWindow) {
		t.Fatal("Expired wrong")
	}
	rec := httptest.NewRecorder()
	o.Replay(rec)
	if rec.Code != 202 || rec.Body.String() != `{"accepted":3}` || rec.Header().Get(ReplayedHeader) != "true" {
		t.Fatalf("replay: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
}

func TestLocksSerializeOneKey(t *testing.T) {
	var l Locks
	var inside, maxInside int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := l.Lock("k")
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("%d holders of one key at once", maxInside)
	}
	if len(l.held) != 0 {
		t.Fatalf("%d locks left behind", len(l.held))
	}
	// Different keys do not block each other.
	u1 := l.Lock("a")
	u2 := l.Lock("b")
	u2()
	u1()
}
