package tracker

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/event"
)

// EventError is one problem with one event of a request body.
type EventError struct {
	Index int    // position in the body's list (0 for a single object)
	Field string // JSON key, "" for the event as a whole
	Msg   string
}

func (e EventError) String() string {
	s := "event " + strconv.Itoa(e.Index)
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

// decodeEvents reads the events of a POST or PUT body: one event object or
// a list (PUT: a list only). Every event is checked against Rasa's
// EVENTS_SCHEMA rules that matter (a known "event" type, field types,
// required fields) and what Rasa's event classes need to load it
// (a user event's parse_data, an action's name or action_text), plus
// ev.Validate, and comes back as Rasa's class re-serializes it
// (event.Canonical): a missing, null or zero timestamp becomes now().
func decodeEvents(v event.Value, id string, now func() float64, listOnly bool) ([]event.Event, []EventError) {
	var items []event.Value
	switch v.Kind() {
	case event.Array:
		items = v.Elems()
	case event.Object:
		if listOnly {
			return nil, []EventError{{Msg: "the body must be a list of events, got a single object"}}
		}
		items = []event.Value{v}
	default:
		return nil, []EventError{{Msg: "the body must be an event object or a list of events, got " + v.Kind().String()}}
	}
	var errs []EventError
	out := make([]event.Event, 0, len(items))
	for i, item := range items {
		add := func(field, msg string) { errs = append(errs, EventError{Index: i, Field: field, Msg: msg}) }
		if item.Kind() != event.Object {
			add("", "must be an object, got "+item.Kind().String())
			continue
		}
		t, ok := item.Get("event")
		switch {
		case !ok || t.IsNull():
			add("event", "is missing")
			continue
		case t.Kind() != event.String:
			add("event", "must be a string, got "+t.Kind().String())
			continue
		case !event.KnownType(t.Str()):
			add("event", fmt.Sprintf("unknown event type %q (Rasa's types: %s)", t.Str(), knownTypes))
			continue
		}
		ev, err := event.New(id, item)
		if err != nil {
			add("", err.Error())
			continue
		}
		if err := ev.Validate(); err != nil {
			if ve, ok := err.(event.ValidationError); ok {
				for _, fe := range ve {
					add(fe.Field, fe.Msg)
				}
			} else {
				add("", err.Error())
			}
			continue
		}
		before := len(errs)
		checkRasaSchema(ev, add)
		if len(errs) > before {
			continue
		}
		c, err := event.Canonical(ev, now)
		if err != nil {
			add("", err.Error())
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

var knownTypes = strings.Join([]string{
	event.TypeUser, event.TypeBot, event.TypeAction, event.TypeSlot, event.TypeEntities,
	event.TypeUserFeaturization, event.TypeSessionStarted, event.TypeRestart, event.TypeRewind,
	event.TypeUndo, event.TypeResetSlots, event.TypeFollowup, event.TypePause, event.TypeResume,
	event.TypeActiveLoop, event.TypeLoopInterrupted, event.TypeActionExecutionRejected,
	event.TypeReminder, event.TypeCancelReminder, event.TypeAgent, event.TypeExport,
	event.TypeForm, event.TypeFormValidation,
}, ", ")

// checkRasaSchema applies the rules of Rasa's EVENTS_SCHEMA (and of its
// event classes' constructors) that ev.Validate does not.
func checkRasaSchema(ev event.Event, add func(field, msg string)) {
	switch ev.Type() {
	case event.TypeUser:
		pd, ok := ev.Get("parse_data")
		if !ok || pd.IsNull() {
			// Rasa's UserUttered._from_parse_data fails without it, so a
			// tracker holding such an event could not be loaded by Rasa.
			add("parse_data", "is missing (required for user events)")
			return
		}
		if intent, ok := pd.Get("intent"); ok {
			checkIntent("parse_data.intent", intent, add)
		}
		if ranking, ok := pd.Get("intent_ranking"); ok {
			if ranking.Kind() != event.Array {
				add("parse_data.intent_ranking", "must be an array, got "+ranking.Kind().String())
			}
			for i, r := range ranking.Elems() {
				checkIntent(fmt.Sprintf("parse_data.intent_ranking[%d]", i), r, add)
			}
		}
		if ents, ok := pd.Get("entities"); ok {
			checkEntities("parse_data.entities", ents, add)
		}
		if txt, ok := pd.Get("text"); ok && txt.Kind() != event.String && !txt.IsNull() {
			add("parse_data.text", "must be a string or null, got "+txt.Kind().String())
		}
	case event.TypeAction:
		if h, ok := ev.Get("hide_rule_turn"); ok && h.Kind() != event.Bool {
			add("hide_rule_turn", "must be a boolean, got "+h.Kind().String())
		}
		name, _ := ev.Get("name")
		text, _ := ev.Get("action_text")
		if name.IsNull() && text.IsNull() {
			add("name", "an action event needs a name or an action_text")
		}
	case event.TypeSlot:
		if _, ok := ev.Get("value"); !ok {
			add("value", "is missing (required for slot events)")
		}
	case event.TypeEntities:
		ents, ok := ev.Get("entities")
		if !ok {
			add("entities", "is missing (required for entities events)")
			return
		}
		checkEntities("entities", ents, add)
	}
}

func checkIntent(field string, v event.Value, add func(field, msg string)) {
	if v.Kind() != event.Object {
		add(field, "must be an object, got "+v.Kind().String())
		return
	}
	if n, ok := v.Get("name"); ok && n.Kind() != event.String {
		add(field+".name", "must be a string, got "+n.Kind().String())
	}
	if c, ok := v.Get("confidence"); ok && c.Kind() != event.Number {
		add(field+".confidence", "must be a number, got "+c.Kind().String())
	}
}

// checkEntities is Rasa's ENTITIES_SCHEMA.
func checkEntities(field string, v event.Value, add func(field, msg string)) {
	if v.Kind() != event.Array {
		add(field, "must be an array, got "+v.Kind().String())
		return
	}
	for i, e := range v.Elems() {
		f := fmt.Sprintf("%s[%d]", field, i)
		if e.Kind() != event.Object {
			add(f, "must be an object, got "+e.Kind().String())
			continue
		}
		if en, ok := e.Get("entity"); !ok {
			add(f+".entity", "is missing")
		} else if en.Kind() != event.String {
			add(f+".entity", "must be a string, got "+en.Kind().String())
		}
		if _, ok := e.Get("value"); !ok {
			add(f+".value", "is missing")
		}
		for _, k := range []string{"start", "end"} {
			if x, ok := e.Get(k); ok && !isIntegral(x) {
				add(f+"."+k, "must be an integer")
			}
		}
		if c, ok := e.Get("confidence"); ok && c.Kind() != event.Number {
			add(f+".confidence", "must be a number, got "+c.Kind().String())
		}
		for _, k := range []string{"extractor", "role", "group"} {
			if x, ok := e.Get(k); ok && x.Kind() != event.String && !x.IsNull() {
				add(f+"."+k, "must be a string or null, got "+x.Kind().String())
			}
		}
	}
}

// isIntegral is JSON Schema's "integer": a number without a fractional
// part (10.0 included).
func isIntegral(v event.Value) bool {
	if v.IsInteger() {
		return true
	}
	f, ok := v.Float()
	return ok && f == math.Trunc(f) && !math.IsInf(f, 0)
}
