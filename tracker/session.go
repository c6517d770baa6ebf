package tracker

import (
	"math"
	"sync"
	"time"

	"github.com/parleyhq/parley/event"
)

// This file is what Rasa's append path adds to posted events: a session
// start on a new conversation (MessageProcessor.
// fetch_tracker_with_initial_session running action_session_start) and
// the model's ids in every appended event's metadata
// (DialogueStateTracker.update).

// clock hands out event timestamps as Rasa's time.time() calls do, but
// strictly increasing, so that events made in one request keep their
// order under the SQL store's timestamp comparisons (an
// action_session_start stays before its session_started, as in Rasa).
type clock struct {
	mu   sync.Mutex
	now  func() time.Time
	last float64
}

func (c *clock) seconds() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := float64(c.now().UnixNano()) / 1e9
	if t <= c.last {
		t = math.Nextafter(c.last, math.Inf(1))
	}
	c.last = t
	return t
}

// beginsWithSessionStart is rasa.shared.core.events.
// do_events_begin_with_session_start: action_session_start, then
// session_started.
func beginsWithSessionStart(evs []event.Event) bool {
	if len(evs) < 2 || evs[0].Type() != event.TypeAction || evs[1].Type() != event.TypeSessionStarted {
		return false
	}
	n, _ := evs[0].Get("name")
	return n.Kind() == event.String && n.Str() == actionSessionStart
}

// sessionStart returns the events Rasa's action_session_start logs on a
// new conversation, in Rasa's bytes: the action as its prediction
// (confidence 1.0, no policy), session_started, and action_listen. With no
// earlier events there are no slots to carry over, and the conversation
// API passes no session metadata.
func (h *Handler) sessionStart() []event.Event {
	action := func(name string, confidence event.Value) event.Value {
		return event.ObjectValue(
			event.Member{Key: "event", Value: event.StringValue(event.TypeAction)},
			event.Member{Key: "timestamp", Value: event.FloatValue(h.clock.seconds())},
			event.Member{Key: "name", Value: event.StringValue(name)},
			event.Member{Key: "policy", Value: event.NullValue()},
			event.Member{Key: "confidence", Value: confidence},
			event.Member{Key: "action_text", Value: event.NullValue()},
			event.Member{Key: "hide_rule_turn", Value: event.BoolValue(false)},
		)
	}
	// Rasa makes the action_session_start event after running the action,
	// then stamps the action's own events anew: in time it comes first.
	bodies := []event.Value{action(actionSessionStart, event.FloatValue(1))}
	bodies = append(bodies, event.ObjectValue(
		event.Member{Key: "event", Value: event.StringValue(event.TypeSessionStarted)},
		event.Member{Key: "timestamp", Value: event.FloatValue(h.clock.seconds())},
	))
	bodies = append(bodies, action(actionListen, event.NullValue()))
	out := make([]event.Event, len(bodies))
	for i, b := range bodies {
		ev, _ := event.New("", b) // objects built here: cannot fail
		out[i] = h.withModel(ev)
	}
	return out
}

// withModel adds the configured model_id and assistant_id to an event's
// metadata unless it has them, as DialogueStateTracker.update does; the
// metadata, now non-empty, takes the place Event.as_dict gives it, right
// after the timestamp.
func (h *Handler) withModel(ev event.Event) event.Event {
	if h.modelID == "" && h.assistantID == "" {
		return ev
	}
	md, _ := ev.Get("metadata")
	if md.Kind() != event.Object {
		md = event.ObjectValue()
	}
	changed := false
	for _, kv := range [][2]string{{"model_id", h.modelID}, {"assistant_id", h.assistantID}} {
		if kv[1] == "" {
			continue
		}
		if _, ok := md.Get(kv[0]); !ok {
			md = md.With(kv[0], event.StringValue(kv[1]))
			changed = true
		}
	}
	if !changed {
		return ev
	}
	var head, rest []event.Member
	for _, m := range ev.Body().Members() {
		switch m.Key {
		case "event", "timestamp":
			head = append(head, m)
		case "metadata":
		default:
			rest = append(rest, m)
		}
	}
	ms := append(append(head, event.Member{Key: "metadata", Value: md}), rest...)
	out, _ := event.New(ev.SenderID, event.ObjectValue(ms...))
	out.ID = ev.ID
	return out
}

// canonicalAll is what Rasa's tracker store hands its code for stored
// rows: each loaded by its event class (Event.from_parameters). Rows
// Rasa could not load (unknown types) are kept as they are.
func (h *Handler) canonicalAll(evs []event.Event) []event.Event {
	out := make([]event.Event, len(evs))
	for i, ev := range evs {
		c, err := event.Canonical(ev, h.clock.seconds)
		if err != nil {
			c = ev
		}
		out[i] = c
	}
	return out
}
