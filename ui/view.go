package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/event"
)

// item is one event of a transcript as the page shows it: a bubble for
// what the user and the bot said, a marker for everything else.
type item struct {
	Index  int
	Kind   string // "user", "bot" or "marker"
	Type   string
	Text   string
	Time   string // HH:MM:SS UTC
	Full   string // the whole timestamp, for the title
	Intent string
	// Confidence is the intent's, formatted ("" when absent).
	Confidence string
	Entities   []entity
	// Label and Detail describe a marker: "slot city", "= "Berlin"".
	Label, Detail string
	Channel       string
}

type entity struct{ Name, Value string }

// transcript turns a conversation's events, from index start on, into
// items.
func transcript(evs []event.Event, start int) []item {
	out := make([]item, 0, len(evs))
	for i, ev := range evs {
		out = append(out, itemOf(start+i, ev))
	}
	return out
}

func itemOf(i int, ev event.Event) item {
	it := item{Index: i, Type: ev.Type(), Kind: "marker"}
	if ts, ok := ev.Timestamp(); ok {
		it.Time, it.Full = formatTS(ts)
	}
	str := func(key string) string {
		if v, ok := ev.Get(key); ok && v.Kind() == event.String {
			return v.Str()
		}
		return ""
	}
	switch it.Type {
	case "user":
		it.Kind, it.Text, it.Channel = "user", str("text"), str("input_channel")
		pd, _ := ev.Get("parse_data")
		intent, _ := pd.Get("intent")
		if n, ok := intent.Get("name"); ok && n.Kind() == event.String {
			it.Intent = n.Str()
		}
		if c, ok := intent.Get("confidence"); ok {
			if f, ok := c.Float(); ok {
				it.Confidence = strconv.FormatFloat(f, 'f', 2, 64)
			}
		}
		ents, _ := pd.Get("entities")
		if ents.Kind() == event.Array {
			for _, e := range ents.Elems() {
				n, _ := e.Get("entity")
				v, _ := e.Get("value")
				it.Entities = append(it.Entities, entity{Name: scalar(n), Value: scalar(v)})
			}
		}
	case "bot":
		it.Kind, it.Text = "bot", str("text")
		if it.Text == "" {
			if d, ok := ev.Get("data"); ok && !d.IsNull() {
				it.Text = compact(d, 200)
			}
		}
	case "slot":
		it.Label, it.Detail = "slot "+str("name"), "= "+valueOf(ev, "value")
	case "action":
		it.Label = "action " + str("name")
		var parts []string
		if p := str("policy"); p != "" {
			parts = append(parts, p)
		}
		if c, ok := ev.Get("confidence"); ok {
			if f, ok := c.Float(); ok {
				parts = append(parts, strconv.FormatFloat(f, 'f', 2, 64))
			}
		}
		it.Detail = strings.Join(parts, " ")
	case "session_started":
		it.Label = "session started"
	case "active_loop":
		it.Label, it.Detail = "active loop", valueOf(ev, "name")
	case "followup", "action_execution_rejected", "reminder", "cancel_reminder":
		it.Label, it.Detail = strings.ReplaceAll(it.Type, "_", " "), str("name")
	case "user_featurization":
		it.Label = "user featurization"
	default:
		it.Label = strings.ReplaceAll(it.Type, "_", " ")
	}
	return it
}

func valueOf(ev event.Event, key string) string {
	v, ok := ev.Get(key)
	if !ok {
		return "null"
	}
	return compact(v, 200)
}

// compact is a value's JSON, cut to n characters.
func compact(v event.Value, n int) string {
	s := string(v.AppendJSON(nil, event.FormatCompact))
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func scalar(v event.Value) string {
	if v.Kind() == event.String {
		return v.Str()
	}
	return compact(v, 80)
}

func formatTS(ts float64) (short, full string) {
	if math.IsNaN(ts) || math.IsInf(ts, 0) || ts < 0 || ts > 1e11 {
		s := strconv.FormatFloat(ts, 'g', -1, 64)
		return s, s
	}
	sec, frac := math.Modf(ts)
	t := time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return t.Format("15:04:05"), t.Format("2006-01-02 15:04:05.000 MST")
}

// ago formats a duration for tables: "3s", "2m10s", "1h5m".
func ago(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
