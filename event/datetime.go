package event

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// isoDateTime is the ISO 8601 subset of what dateutil's parser.parse reads
// that reminders carry in practice: a date, optionally a time with seconds
// and a fraction, optionally Z, UTC or a numeric offset.
var isoDateTime = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(?: ?(Z|UTC|[+-]\d{2}(?::?\d{2})?))?$`)

// isoformat is ReminderScheduled's round trip of date_time:
// dateutil.parser.parse(s).isoformat(). Strings outside isoDateTime are
// refused rather than guessed at (dateutil reads many free-form dates).
func isoformat(v Value) (string, error) {
	if v.kind != String {
		return "", fmt.Errorf("%w: a reminder's date_time must be a string, got %s", ErrNotRepresentable, v.kind)
	}
	m := isoDateTime.FindStringSubmatch(strings.TrimSpace(v.s))
	if m == nil {
		return "", fmt.Errorf("%w: a reminder's date_time %q is not an ISO 8601 date and time", ErrNotRepresentable, v.s)
	}
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	year, month, day := num(m[1]), num(m[2]), num(m[3])
	hour, minute, sec := num(m[4]), num(m[5]), num(m[6])
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Year() != year || int(t.Month()) != month || t.Day() != day || hour > 23 || minute > 59 || sec > 59 || year < 1 {
		return "", fmt.Errorf("%w: a reminder's date_time %q is not a valid date and time", ErrNotRepresentable, v.s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, sec)
	// dateutil keeps six digits of the fraction, truncating.
	if frac := m[7]; frac != "" {
		frac = (frac + "000000")[:6]
		if frac != "000000" {
			b.WriteString("." + frac)
		}
	}
	switch z := m[8]; {
	case z == "":
	case z == "Z" || z == "UTC":
		b.WriteString("+00:00")
	default:
		digits := strings.ReplaceAll(z[1:], ":", "")
		hh, mm := digits[:2], "00"
		if len(digits) == 4 {
			mm = digits[2:]
		}
		if num(hh) > 23 || num(mm) > 59 {
			return "", fmt.Errorf("%w: a reminder's date_time %q has an invalid offset", ErrNotRepresentable, v.s)
		}
		b.WriteString(z[:1] + hh + ":" + mm)
	}
	return b.String(), nil
}
