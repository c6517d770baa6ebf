package tracker

import (
	_ "embed"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/parleyhq/parley/event"
)

// rasaCase is one case of testdata/rasa_states.json, made by Rasa 3.6.21
// itself (testdata/gen_rasa.py).
type rasaCase struct {
	name   string
	sender string
	events []event.Event
	until  *float64
	states map[Verbosity]string
}

func loadRasaCases(t *testing.T) []rasaCase {
	t.Helper()
	data, err := os.ReadFile("testdata/rasa_states.json")
	if err != nil {
		t.Fatal(err)
	}
	root, err := event.ParseValue(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []rasaCase
	for _, c := range root.Elems() {
		name, _ := c.Get("name")
		sender, _ := c.Get("sender_id")
		rc := rasaCase{name: name.Str(), sender: sender.Str(), states: map[Verbosity]string{}}
		evs, _ := c.Get("events")
		for _, b := range evs.Elems() {
			ev, err := event.New(rc.sender, b)
			if err != nil {
				t.Fatal(err)
			}
			rc.events = append(rc.events, ev)
		}
		if u, ok := c.Get("until"); ok {
			f, _ := u.Float()
			rc.until = &f
		}
		sts, _ := c.Get("states")
		for _, m := range sts.Members() {
			v, ok := ParseVerbosity(m.Key)
			if !ok {
				t.Fatalf("bad verbosity %q", m.Key)
			}
			rc.states[v] = m.Value.Str()
		}
		out = append(out, rc)
	}
	if len(out) < 30 {
		t.Fatalf("only %d cases in testdata/rasa_states.json", len(out))
	}
	return out
}

// TestStateMatchesRasa checks the tracker state, for every include_events
// value, byte for byte against what Rasa's HTTP API returns for the same
// events: undo, rewind, restart, sessions, loops, entities, until.
func TestStateMatchesRasa(t *testing.T) {
	for _, c := range loadRasaCases(t) {
		t.Run(c.name, func(t *testing.T) {
			tr := NewTracker(c.sender, c.events)
			if c.until != nil {
				tr = tr.Until(*c.until)
			}
			for _, v := range []Verbosity{VerbosityNone, VerbosityApplied, VerbosityAfterRestart, VerbosityAll} {
				got := string(tr.AppendStateJSON(nil, v))
				if want := c.states[v]; got != want {
					t.Errorf("%s:\n got %s\nwant %s\nfirst difference at byte %d", v, got, want, firstDiff(got, want))
				}
			}
		})
	}
}

func firstDiff(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func TestParseVerbosity(t *testing.T) {
	tests := []struct {
		in   string
		want Verbosity
		ok   bool
	}{
		{"ALL", VerbosityAll, true},
		{"all", VerbosityAll, true},
		{"After_Restart", VerbosityAfterRestart, true},
		{"applied", VerbosityApplied, true},
		{"none", VerbosityNone, true},
		{"", 0, false},
		{"AFTER RESTART", 0, false},
		{"everything", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseVerbosity(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseVerbosity(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// The worked examples of the research notes (§9), after
// [action_session_start, session_started, action_listen, user hi, slot s=1,
// utter_a, bot, action_listen], as field checks that say what each rule
// does.
func TestWorkedExamples(t *testing.T) {
	base := []string{
		`{"event": "action", "timestamp": 1, "name": "action_session_start"}`,
		`{"event": "session_started", "timestamp": 2}`,
		`{"event": "action", "timestamp": 3, "name": "action_listen"}`,
		`{"event": "user", "timestamp": 4, "text": "hi", "parse_data": {"intent": {"name": "greet"}}, "input_channel": "rest"}`,
		`{"event": "slot", "timestamp": 5, "name": "s", "value": 1}`,
		`{"event": "action", "timestamp": 6, "name": "utter_a"}`,
		`{"event": "bot", "timestamp": 7, "text": "hey"}`,
		`{"event": "action", "timestamp": 8, "name": "action_listen"}`,
	}
	tests := []struct {
		name          string
		extra         string
		applied       []string // the "event" (and name) of the applied events
		slot          string   // slots as JSON
		followup      string
		latestAction  string
		inputChannel  string
		afterRestartN int
	}{
		{
			name: "undo", extra: `{"event": "undo", "timestamp": 9}`,
			applied: []string{"action:action_listen", "user", "slot", "action:utter_a", "bot"},
			slot:    `{"s":1}`, followup: `null`, latestAction: `"utter_a"`, inputChannel: `"rest"`, afterRestartN: 9,
		},
		{
			name: "rewind", extra: `{"event": "rewind", "timestamp": 9}`,
			applied: nil,
			slot:    `{"s":null}`, followup: `"action_listen"`, latestAction: `null`, inputChannel: `"rest"`, afterRestartN: 9,
		},
		{
			name: "restart", extra: `{"event": "restart", "timestamp": 9}`,
			applied: nil,
			slot:    `{"s":null}`, followup: `"action_session_start"`, latestAction: `null`, inputChannel: `"rest"`, afterRestartN: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evs []event.Event
			for _, s := range append(append([]string(nil), base...), tt.extra) {
				ev, err := event.Parse([]byte(s))
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, ev)
			}
			tr := NewTracker("c1", evs)
			var applied []string
			for _, ev := range tr.EventsFor(VerbosityApplied) {
				name := ev.Type()
				if n, ok := ev.Get("name"); ok && ev.Type() == event.TypeAction {
					name += ":" + n.Str()
				}
				applied = append(applied, name)
			}
			if strings.Join(applied, ",") != strings.Join(tt.applied, ",") {
				t.Errorf("applied = %v, want %v", applied, tt.applied)
			}
			st := tr.State(VerbosityNone)
			for key, want := range map[string]string{
				"slots": tt.slot, "followup_action": tt.followup, "latest_action_name": tt.latestAction,
				"latest_input_channel": tt.inputChannel, "events": "null",
			} {
				v, _ := st.Get(key)
				if got := string(v.AppendJSON(nil, event.FormatUJSON)); got != want {
					t.Errorf("%s = %s, want %s", key, got, want)
				}
			}
			if n := len(tr.EventsFor(VerbosityAfterRestart)); n != tt.afterRestartN {
				t.Errorf("AFTER_RESTART has %d events, want %d", n, tt.afterRestartN)
			}
		})
	}
}

func TestLatestSession(t *testing.T) {
	var evs []event.Event
	for _, s := range []string{
		`{"event": "action", "timestamp": 1, "name": "action_session_start"}`,
		`{"event": "session_started", "timestamp": 2}`,
		`{"event": "slot", "timestamp": 3, "name": "a", "value": 1}`,
		`{"event": "action", "timestamp": 4, "name": "action_session_start"}`,
		`{"event": "session_started", "timestamp": 5}`,
		`{"event": "slot", "timestamp": 6, "name": "b", "value": 2}`,
	} {
		ev, _ := event.Parse([]byte(s))
		evs = append(evs, ev)
	}
	if got := LatestSession(evs); len(got) != 2 || got[0].Type() != event.TypeSessionStarted {
		t.Fatalf("LatestSession = %d events starting with %s", len(got), got[0].Type())
	}
	// Slots set only in an earlier session are not in the latest session's
	// tracker at all, as with Rasa's retrieve() and AnySlotDict.
	st := NewTracker("c", LatestSession(evs)).State(VerbosityNone)
	slots, _ := st.Get("slots")
	if got := string(slots.AppendJSON(nil, event.FormatUJSON)); got != `{"b":2}` {
		t.Errorf("latest session slots = %s", got)
	}
	if got := LatestSession(evs[:3]); len(got) != 2 {
		t.Errorf("one session: %d events", len(got))
	}
	if got := LatestSession(evs[2:3]); len(got) != 1 {
		t.Errorf("no session start: %d events", len(got))
	}
	// By timestamp, as Rasa's SQL query: an event appended after the
	// session start but with an older timestamp is not in the session.
	old, _ := event.Parse([]byte(`{"event": "slot", "timestamp": 4.5, "name": "old", "value": 1}`))
	if got := LatestSession(append(evs[:6:6], old)); len(got) != 2 {
		t.Errorf("an older-timestamped event counted in the latest session: %d events", len(got))
	}
}

// TestTooComplex: a conversation whose undo replays exceed the work bound
// reports ErrTooComplex instead of running for minutes.
func TestTooComplex(t *testing.T) {
	var evs []event.Event
	for i := 0; i < 200; i++ {
		a, _ := event.Parse([]byte(`{"event": "action", "timestamp": 1, "name": "a"}`))
		evs = append(evs, a)
	}
	for i := 0; i < 100; i++ {
		u, _ := event.Parse([]byte(`{"event": "undo", "timestamp": 2}`))
		evs = append(evs, u)
	}
	if err := NewTracker("c", evs).Err(); err != nil {
		t.Fatalf("within the bound: %v", err)
	}
	defer func(old int64) { maxWork = old }(maxWork)
	maxWork = 10_000
	if err := NewTracker("c", evs).Err(); !errors.Is(err, ErrTooComplex) {
		t.Fatalf("over the bound: Err() = %v", err)
	}
}
