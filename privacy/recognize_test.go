package privacy

import (
	"testing"
)

func TestRecognizers(t *testing.T) {
	tests := []struct {
		rec  string
		text string
		want []string // the matched substrings, in order
	}{
		{"email", "write to jane.doe+x@mail.example.co.uk today", []string{"jane.doe+x@mail.example.co.uk"}},
		{"email", "no at sign here", nil},
		{"email", "a@b is not an address", nil},
		{"phone", "call +49 30 1234567 or +1 (415) 555-0132", []string{"+49 30 1234567", "+1 (415) 555-0132"}},
		{"phone", "my number is (415) 555-0132.", []string{"(415) 555-0132"}},
		{"phone", "UK 07700 900123 and FR 06 12 34 56 78", []string{"07700 900123", "06 12 34 56 78"}},
		{"phone", "+14155550132", []string{"+14155550132"}},
		{"phone", "0049 30 12345678", []string{"0049 30 12345678"}},
		{"phone", "on 2024-01-15 at 10:30, order 12345, pi 3.14159265", nil},
		{"phone", "id a1b2c3d4e5f6 abc123456789", nil},
		{"credit_card", "card 4111 1111 1111 1111 exp 12/29", []string{"4111 1111 1111 1111"}},
		{"credit_card", "card 4111-1111-1111-1111", []string{"4111-1111-1111-1111"}},
		{"credit_card", "5500005555555559", []string{"5500005555555559"}},
		{"credit_card", "4111 1111 1111 1112 fails Luhn", nil},
		{"iban", "IBAN DE89 3704 0044 0532 0130 00 please", []string{"DE89 3704 0044 0532 0130 00"}},
		{"iban", "gb82west12345698765432", []string{"gb82west12345698765432"}},
		{"iban", "DE89 3704 0044 0532 0130 01 has a bad checksum", nil},
	}
	for _, tc := range tests {
		r, err := lookupRecognizer(tc.rec)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range r.Find(tc.text) {
			got = append(got, tc.text[m[0]:m[1]])
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s(%q) = %q, want %q", tc.rec, tc.text, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s(%q) = %q, want %q", tc.rec, tc.text, got, tc.want)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		in, ch      string
		left, right int
		want        string
	}{
		{"1234-5678-9012-3456", "*", 0, 4, "****-****-****-3456"}, // Rasa's example
		{"1234-5678-9012-3456", "#", 0, 4, "####-####-####-3456"},
		{"Jane Doe", "*", 1, 0, "J*** ***"},
		{"jane@example.com", "*", 0, 0, "****@*******.***"},
		{"ab", "*", 3, 3, "ab"},
		{"Zoë", "*", 0, 0, "***"},
	}
	for _, tc := range tests {
		if got := redact(tc.in, tc.ch, tc.left, tc.right); got != tc.want {
			t.Errorf("redact(%q, %q, %d, %d) = %q, want %q", tc.in, tc.ch, tc.left, tc.right, got, tc.want)
		}
	}
}

func TestRegisterRecognizer(t *testing.T) {
	RegisterRecognizer("test_order_number", RecognizerFunc(func(s string) [][2]int {
		var out [][2]int
		for i := 0; i+8 <= len(s); i++ {
			if s[i:i+3] == "ORD" {
				out = append(out, [2]int{i, i + 8})
			}
		}
		return out
	}))
	defer func() {
		if recover() == nil {
			t.Error("registering a name twice did not panic")
		}
	}()
	r, err := lookupRecognizer("TEST_ORDER_NUMBER")
	if err != nil || len(r.Find("order ORD12345 shipped")) != 1 {
		t.Fatalf("registered recognizer not found or not working: %v", err)
	}
	RegisterRecognizer("email", RecognizerFunc(findEmails))
}
