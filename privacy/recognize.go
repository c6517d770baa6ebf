package privacy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// A Recognizer finds PII in free text without a model. Find returns the
// byte ranges [start, end) of what it recognizes in s, in any order; they
// may overlap. It must be safe for concurrent use and run in time linear in
// len(s) (Go's regexp package guarantees that for patterns).
type Recognizer interface {
	Find(s string) [][2]int
}

// RecognizerFunc adapts a function to Recognizer.
type RecognizerFunc func(s string) [][2]int

// Find calls f.
func (f RecognizerFunc) Find(s string) [][2]int { return f(s) }

var recognizers = struct {
	sync.RWMutex
	m map[string]Recognizer
}{m: map[string]Recognizer{}}

// RegisterRecognizer makes a recognizer available to rules under name
// (`recognizer: name`), as broker.Register does for brokers. It panics on
// an empty or repeated name, a programming error.
func RegisterRecognizer(name string, r Recognizer) {
	key := strings.ToLower(strings.TrimSpace(name))
	if key == "" || r == nil {
		panic("privacy.RegisterRecognizer: empty name or nil recognizer")
	}
	recognizers.Lock()
	defer recognizers.Unlock()
	if _, dup := recognizers.m[key]; dup {
		panic("privacy.RegisterRecognizer: " + key + " registered twice")
	}
	recognizers.m[key] = r
}

// Recognizers returns the registered recognizer names, sorted.
func Recognizers() []string {
	recognizers.RLock()
	defer recognizers.RUnlock()
	out := make([]string, 0, len(recognizers.m))
	for k := range recognizers.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lookupRecognizer(name string) (Recognizer, error) {
	recognizers.RLock()
	defer recognizers.RUnlock()
	r, ok := recognizers.m[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return nil, fmt.Errorf("unknown recognizer %q (registered: %s)", name, strings.Join(sortedKeys(recognizers.m), ", "))
	}
	return r, nil
}

func sortedKeys(m map[string]Recognizer) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func init() {
	RegisterRecognizer("email", RecognizerFunc(findEmails))
	RegisterRecognizer("phone", RecognizerFunc(findPhones))
	RegisterRecognizer("credit_card", RecognizerFunc(findCards))
	RegisterRecognizer("iban", RecognizerFunc(findIBANs))
}

var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}`)

func findEmails(s string) [][2]int {
	if !strings.Contains(s, "@") {
		return nil
	}
	return spans(emailRE.FindAllStringIndex(s, -1))
}

// phoneRE finds candidates: an optional + or 00, then digits with the
// separators people type (space, dot, dash, slash, parentheses).
var phoneRE = regexp.MustCompile(`(?:\+|\b00)?\(?\d[\d ().\-/]{5,22}\d`)

// findPhones accepts E.164 numbers (+ and 8 to 15 digits) and national
// numbers of 9 to 12 digits, or 8 to 12 with parentheses around an area
// code; it rejects what looks like a date, a time, a decimal number, or
// digits glued to letters (identifiers, hashes).
func findPhones(s string) [][2]int {
	if maxRun(s, " ().-/+") < minDigitRun {
		return nil
	}
	var out [][2]int
	for _, m := range phoneRE.FindAllStringIndex(s, -1) {
		a, b := m[0], m[1]
		if a > 0 && isAlnum(s[a-1]) || b < len(s) && isAlnum(s[b]) {
			continue
		}
		c := s[a:b]
		// A trailing separator run or ")" without "(" is not part of it.
		if strings.Count(c, "(") != strings.Count(c, ")") {
			continue
		}
		n := countDigits(c)
		intl00 := strings.HasPrefix(c, "00") && len(c) > 2 && c[2] >= '1' && c[2] <= '9' // 00 and a country code
		switch {
		case strings.HasPrefix(c, "+") || intl00:
			if n < 8 || n > 15+2*boolInt(intl00) {
				continue
			}
		case strings.Contains(c, "("):
			if n < 8 || n > 12 {
				continue
			}
		default:
			if n < 9 || n > 12 || looksLikeDateOrNumber(c) {
				continue
			}
		}
		out = append(out, [2]int{a, b})
	}
	return out
}

var dateLike = regexp.MustCompile(`^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})(?:[ T]\d{1,2}(?:[:.]\d{2})*)?$|^\d+\.\d+$`)

func looksLikeDateOrNumber(c string) bool { return dateLike.MatchString(c) }

var cardRE = regexp.MustCompile(`\d(?:[ \-]?\d){12,18}`)

// findCards finds 13 to 19 digits, optionally grouped by spaces or
// dashes, that pass the Luhn check.
func findCards(s string) [][2]int {
	if maxRun(s, " -") < 13 {
		return nil
	}
	var out [][2]int
	for _, m := range cardRE.FindAllStringIndex(s, -1) {
		a, b := m[0], m[1]
		if a > 0 && isAlnum(s[a-1]) || b < len(s) && isAlnum(s[b]) {
			continue
		}
		if luhn(s[a:b]) {
			out = append(out, [2]int{a, b})
		}
	}
	return out
}

// luhn reports whether the digits of s pass the Luhn checksum.
func luhn(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

var ibanRE = regexp.MustCompile(`(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b`)

// findIBANs finds IBANs, grouped by spaces or not, upper or lower case,
// that pass the ISO 13616 mod-97 check.
func findIBANs(s string) [][2]int {
	if countDigits(s) < 4 {
		return nil
	}
	var out [][2]int
	for _, m := range ibanRE.FindAllStringIndex(s, -1) {
		c := s[m[0]:m[1]]
		// A match may run into the next word ("DE89 3704 ... 3000 and"):
		// shrink it group by group until it checks out.
		for {
			if ibanValid(c) {
				out = append(out, [2]int{m[0], m[0] + len(c)})
				break
			}
			i := strings.LastIndexByte(c, ' ')
			if i < 0 {
				break
			}
			c = c[:i]
		}
	}
	return out
}

func ibanValid(c string) bool {
	c = strings.ToUpper(strings.ReplaceAll(c, " ", ""))
	if len(c) < 15 || len(c) > 34 {
		return false
	}
	// Move the country and check digits to the end, letters to numbers,
	// and take the remainder mod 97 digit by digit.
	r := c[4:] + c[:4]
	rem := 0
	for i := 0; i < len(r); i++ {
		ch := r[i]
		switch {
		case ch >= '0' && ch <= '9':
			rem = (rem*10 + int(ch-'0')) % 97
		case ch >= 'A' && ch <= 'Z':
			rem = (rem*100 + int(ch-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

func spans(ms [][]int) [][2]int {
	out := make([][2]int, len(ms))
	for i, m := range ms {
		out[i] = [2]int{m[0], m[1]}
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// maxRun returns the most digits in s with only separators from seps
// between them: a cheap test before a pattern runs.
func maxRun(s, seps string) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if run++; run > best {
				best = run
			}
		case strings.IndexByte(seps, c) >= 0:
		default:
			run = 0
		}
	}
	return best
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
