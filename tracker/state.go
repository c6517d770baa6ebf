package tracker

import (
	"strings"

	"github.com/parleyhq/parley/event"
)

// Verbosity selects which events a tracker state includes: Rasa's
// EventVerbosity, chosen with the include_events query parameter.
type Verbosity int

// The include_events values, with Rasa's numbering.
const (
	// VerbosityNone leaves events out ("events": null).
	VerbosityNone Verbosity = iota + 1
	// VerbosityApplied includes the events that make up the current state:
	// nothing before the last restart or session start, and nothing undone
	// by undo, rewind or a repeated loop execution.
	VerbosityApplied
	// VerbosityAfterRestart includes the events after the last restart; it
	// is Rasa's default.
	VerbosityAfterRestart
	// VerbosityAll includes every event.
	VerbosityAll
)

var verbosityNames = [...]string{VerbosityNone: "NONE", VerbosityApplied: "APPLIED", VerbosityAfterRestart: "AFTER_RESTART", VerbosityAll: "ALL"}

// ParseVerbosity reads an include_events value, case-insensitively as Rasa
// does.
func ParseVerbosity(s string) (Verbosity, bool) {
	up := strings.ToUpper(s)
	for v, name := range verbosityNames {
		if name != "" && name == up {
			return Verbosity(v), true
		}
	}
	return 0, false
}

func (v Verbosity) String() string {
	if v >= VerbosityNone && v <= VerbosityAll {
		return verbosityNames[v]
	}
	return "Verbosity(?)"
}

// Tracker is a conversation's events and the state Rasa derives from them
// by applying each in turn (DialogueStateTracker.update). parley has no
// domain, so, like Rasa's AnySlotDict, every slot an event sets exists.
type Tracker struct {
	senderID string
	events   []event.Event
	// msgs holds the user message of each user event, by index. They are
	// shared with trackers made by Until because Rasa's are objects that
	// entities events mutate in place, and travel_back_in_time reuses them.
	msgs []*userMsg
	info []evInfo // per event, shared with Until trackers
	st   state
	work int64 // events visited by undo and rewind replays
	err  error
}

// NewTracker replays evs, in order, into a tracker for senderID without a
// domain: like Rasa's AnySlotDict, every slot an event sets exists.
func NewTracker(senderID string, evs []event.Event) *Tracker {
	return NewTrackerFor(senderID, evs, nil)
}

// NewTrackerFor replays evs into a tracker with the slots of domain d
// (none but those events set when d is nil).
func NewTrackerFor(senderID string, evs []event.Event, d *Domain) *Tracker {
	t := &Tracker{senderID: senderID, events: evs, msgs: make([]*userMsg, len(evs)), info: make([]evInfo, len(evs))}
	for i, ev := range evs {
		t.info[i] = infoOf(ev)
	}
	if d != nil {
		t.st.slots = domainSlots(d)
	} else {
		t.st.slots = newSlots(false)
	}
	t.st.reset()
	for i := range evs {
		t.apply(i)
	}
	return t
}

// Until returns the tracker as it was at time ts: Rasa's
// travel_back_in_time, which replays events while their timestamp is at
// most ts and stops at the first later one. The slots it shows are those
// the whole tracker knows, reset, as Rasa's init_copy does.
func (t *Tracker) Until(ts float64) *Tracker {
	n := 0
	for n < len(t.events) {
		if f, _ := t.events[n].Timestamp(); !(f <= ts) {
			break
		}
		n++
	}
	c := &Tracker{senderID: t.senderID, events: t.events[:n], msgs: t.msgs[:n], info: t.info[:n]}
	c.st.slots = t.st.slots.fixedCopy()
	c.st.reset()
	for i := range c.events {
		c.apply(i)
	}
	return c
}

// Err reports ErrTooComplex when the state could not be derived (the
// conversation's undo and rewind events would replay for too long).
func (t *Tracker) Err() error { return t.err }

// Events returns the tracker's events; the slice must not be modified.
func (t *Tracker) Events() []event.Event { return t.events }

// SenderID returns the conversation id.
func (t *Tracker) SenderID() string { return t.senderID }

// Slots returns the slot values in the order the slots were first set.
func (t *Tracker) Slots() []event.Member { return t.st.slots.members() }

// Paused reports whether a pause event is in effect.
func (t *Tracker) Paused() bool { return t.st.paused }

// FollowupAction returns the action Rasa would run next without asking
// its policies ("action_listen" on a new tracker), or null.
func (t *Tracker) FollowupAction() event.Value { return t.st.followup }

// LatestActionName returns the name (or end-to-end text) of the last
// action applied, or null.
func (t *Tracker) LatestActionName() event.Value {
	if n, ok := t.st.latestAction.Get("action_name"); ok && truthy(n) {
		return n
	}
	v, _ := t.st.latestAction.Get("action_text")
	return v
}

// EventsFor returns the events that verbosity v includes, or nil for
// VerbosityNone.
func (t *Tracker) EventsFor(v Verbosity) []event.Event {
	switch v {
	case VerbosityAll:
		return t.events
	case VerbosityAfterRestart:
		for i := len(t.events) - 1; i >= 0; i-- {
			if t.events[i].Type() == event.TypeRestart {
				return t.events[i+1:]
			}
		}
		return t.events
	case VerbosityApplied:
		idx := appliedEvents(t.info)
		out := make([]event.Event, len(idx))
		for i, j := range idx {
			out[i] = t.events[j]
		}
		return out
	}
	return nil
}

// State returns Rasa's current_state(verbosity): the tracker object its
// HTTP API returns, with the keys in Rasa's order.
func (t *Tracker) State(v Verbosity) event.Value {
	var evs event.Value
	if v != VerbosityNone {
		list := t.EventsFor(v)
		vals := make([]event.Value, len(list))
		for i, e := range list {
			vals[i] = e.Body()
		}
		evs = event.ArrayValue(vals...)
	}
	var latestTime event.Value
	if n := len(t.events); n > 0 {
		latestTime, _ = t.events[n-1].Get("timestamp")
	}
	activeLoop := event.ObjectValue()
	if l := t.st.activeLoop; l != nil {
		trigger := event.NullValue()
		if l.trigger != nil {
			trigger = l.trigger.parseDataValue()
		}
		activeLoop = event.ObjectValue(
			event.Member{Key: "name", Value: l.name},
			event.Member{Key: "is_interrupted", Value: l.isInterrupted},
			event.Member{Key: "rejected", Value: event.BoolValue(l.rejected)},
			event.Member{Key: "trigger_message", Value: trigger},
		)
	}
	return event.ObjectValue(
		event.Member{Key: "sender_id", Value: event.StringValue(t.senderID)},
		event.Member{Key: "slots", Value: event.ObjectValue(t.st.slots.members()...)},
		event.Member{Key: "latest_message", Value: t.st.latestMsg.latestMessageValue()},
		event.Member{Key: "latest_event_time", Value: latestTime},
		event.Member{Key: "followup_action", Value: t.st.followup},
		event.Member{Key: "paused", Value: event.BoolValue(t.st.paused)},
		event.Member{Key: "events", Value: evs},
		event.Member{Key: "latest_input_channel", Value: latestInputChannel(t.events)},
		event.Member{Key: "active_loop", Value: activeLoop},
		event.Member{Key: "latest_action", Value: t.st.latestAction},
		event.Member{Key: "latest_action_name", Value: t.LatestActionName()},
	)
}

// AppendStateJSON appends State(v) as Rasa's HTTP API writes it.
func (t *Tracker) AppendStateJSON(dst []byte, v Verbosity) []byte {
	return t.State(v).AppendJSON(dst, event.FormatUJSON)
}

// latestInputChannel is the input_channel of the last user event, over all
// events (not only applied ones), as Rasa's get_latest_input_channel.
func latestInputChannel(evs []event.Event) event.Value {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type() == event.TypeUser {
			v, _ := evs[i].Get("input_channel")
			return v
		}
	}
	return event.NullValue()
}

// LatestSession returns the events of the latest session as Rasa's SQL
// tracker store's retrieve() selects them, and so the tracker Rasa's POST
// /tracker/events answers with: the events whose timestamp is at least
// that of the latest session_started event (by timestamp, not position),
// or every event when there is none. Events posted with a timestamp older
// than the session start are not part of it, nor are events without a
// numeric timestamp once a session has started (SQL's NULL comparison).
func LatestSession(evs []event.Event) []event.Event {
	start, found := 0.0, false
	for _, ev := range evs {
		if ev.Type() != event.TypeSessionStarted {
			continue
		}
		if ts, ok := ev.Timestamp(); ok && (!found || ts > start) {
			start, found = ts, true
		}
	}
	if !found {
		return evs
	}
	out := make([]event.Event, 0, len(evs))
	for _, ev := range evs {
		if ts, ok := ev.Timestamp(); ok && ts >= start {
			out = append(out, ev)
		}
	}
	return out
}
