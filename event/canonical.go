package event

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// This file is Rasa 3.6's round trip of an event dict through its classes,
// Event.from_parameters(d).as_dict(): what Rasa stores and publishes for an
// event posted to its conversation API, and what `rasa export` publishes
// for a stored row. Each type's rule names the Rasa class it mirrors.

var (
	// ErrUnknownType: Rasa 3.6 has no event class of this type (its
	// resolve_by_type raises).
	ErrUnknownType = errors.New("unknown event type")
	// ErrNotRepresentable: Rasa's class cannot be built from the event
	// (its constructor raises), so Rasa would answer 500 and store nothing.
	ErrNotRepresentable = errors.New("Rasa cannot load this event")
)

// Canonical returns ev as Rasa 3.6 re-serializes it: the keys its class's
// as_dict writes, in that order, with that class's defaults; unknown keys
// dropped; the legacy types form and form_validation renamed active_loop
// and loop_interrupted; a missing or falsy timestamp set to now() (Unix
// seconds), as Event.__init__'s `timestamp or time.time()` does. SenderID,
// ID and Headers are kept.
//
// Errors wrap ErrUnknownType or ErrNotRepresentable.
func Canonical(ev Event, now func() float64) (Event, error) {
	body := ev.Body()
	t, _ := body.Get("event")
	if t.kind != String {
		return ev, fmt.Errorf("%w: the event field is %s", ErrNotRepresentable, t.kind)
	}
	get := func(k string) Value { v, _ := body.Get(k); return v }
	// getOr is dict.get(k, def): def only when the key is absent.
	getOr := func(k string, def Value) Value {
		if v, ok := body.Get(k); ok {
			return v
		}
		return def
	}

	// Event.__init__ and Event.as_dict.
	ts := get("timestamp")
	if !truthy(ts) {
		ts = FloatValue(now())
	}
	md := get("metadata")
	if !truthy(md) {
		md = ObjectValue()
	}
	typeName := t.s
	out := []Member{{Key: "event", Value: t}, {Key: "timestamp", Value: ts}}
	if truthy(md) {
		out = append(out, Member{Key: "metadata", Value: md})
	}
	set := func(k string, v Value) { out = setMember(out, k, v) }

	switch typeName {
	case TypeUser: // UserUttered._from_parse_data, __init__, as_dict
		pd, err := userParseData(body, md)
		if err != nil {
			return ev, err
		}
		set("text", get("text"))
		set("parse_data", pd)
		set("input_channel", get("input_channel"))
		set("message_id", get("message_id"))
		set("metadata", md)
	case TypeUserFeaturization: // DefinePrevUserUtteredFeaturization
		set("use_text_for_featurization", get("use_text_for_featurization"))
	case TypeEntities: // EntitiesAdded
		set("entities", get("entities"))
	case TypeBot: // BotUttered: data or {}
		data := get("data")
		if !truthy(data) {
			data = ObjectValue()
		}
		set("text", get("text"))
		set("data", data)
		set("metadata", md)
	case TypeSlot: // SlotSet
		set("name", get("name"))
		set("value", get("value"))
	case TypeRestart, TypeRewind, TypeResetSlots, TypeUndo, TypePause, TypeResume, TypeSessionStarted:
		// AlwaysEqualEventMixin classes: Event.as_dict only.
	case TypeExport:
		// StoryExported keeps path but its as_dict does not write it.
	case TypeReminder: // ReminderScheduled._from_story_string, _properties
		dt, err := isoformat(get("date_time"))
		if err != nil {
			return ev, err
		}
		name := get("name")
		if name.IsNull() {
			name = StringValue(reminderName())
		}
		set("intent", get("intent"))
		set("date_time", StringValue(dt))
		set("entities", get("entities"))
		set("name", name)
		set("kill_on_user_msg", getOr("kill_on_user_msg", BoolValue(true)))
	case TypeCancelReminder: // ReminderCancelled: as_dict is Event's
		// ReminderCancelled has no as_dict of its own, so Rasa publishes
		// only event, timestamp and metadata; name, intent and entities
		// are dropped.
	case TypeFollowup: // FollowupAction
		set("name", get("name"))
	case TypeAction: // ActionExecuted
		name, text := get("name"), get("action_text")
		if name.IsNull() && text.IsNull() {
			return ev, fmt.Errorf("%w: an action event needs a name or an action_text", ErrNotRepresentable)
		}
		set("name", name)
		set("policy", get("policy"))
		set("confidence", get("confidence"))
		set("action_text", text)
		set("hide_rule_turn", getOr("hide_rule_turn", BoolValue(false)))
	case TypeAgent: // AgentUttered
		set("text", get("text"))
		set("data", get("data"))
	case TypeActiveLoop, TypeForm: // ActiveLoop; LegacyForm loads as one
		out[0].Value = StringValue(TypeActiveLoop)
		set("name", get("name"))
	case TypeLoopInterrupted: // LoopInterrupted
		set("is_interrupted", getOr("is_interrupted", BoolValue(false)))
	case TypeFormValidation: // LegacyFormValidation loads as LoopInterrupted
		out[0].Value = StringValue(TypeLoopInterrupted)
		set("is_interrupted", BoolValue(!truthy(getOr("validate", BoolValue(true)))))
	case TypeActionExecutionRejected: // ActionExecutionRejected
		set("name", get("name"))
		set("policy", get("policy"))
		set("confidence", get("confidence"))
	default:
		return ev, fmt.Errorf("%w %q", ErrUnknownType, typeName)
	}
	c := Event{ID: ev.ID, SenderID: ev.SenderID, Headers: ev.Headers, body: Value{kind: Object, obj: out}}
	return c, nil
}

// userParseData is UserUttered.parse_data: Rasa's five keys (intent or {},
// a copy of entities or [], text, message_id, metadata) updated with the
// posted parse_data.
func userParseData(body Value, md Value) (Value, error) {
	given, _ := body.Get("parse_data")
	if given.kind != Object {
		// _from_parse_data calls parse_data.get: AttributeError in Rasa.
		return Value{}, fmt.Errorf("%w: a user event needs a parse_data object, got %s", ErrNotRepresentable, given.kind)
	}
	intent, _ := given.Get("intent")
	if !truthy(intent) {
		intent = ObjectValue()
	}
	ents, ok := given.Get("entities")
	if !ok || !truthy(ents) {
		ents = ArrayValue()
	}
	text, _ := body.Get("text")
	msgID, _ := body.Get("message_id")
	pd := []Member{
		{Key: "intent", Value: intent},
		{Key: "entities", Value: ents},
		{Key: "text", Value: text},
		{Key: "message_id", Value: msgID},
		{Key: "metadata", Value: md},
	}
	for _, m := range given.obj {
		pd = setMember(pd, m.Key, m.Value)
	}
	return Value{kind: Object, obj: pd}, nil
}

// truthy is Python's bool() of a JSON value.
func truthy(v Value) bool {
	switch v.kind {
	case Bool:
		return v.b
	case Number:
		f, _ := v.Float()
		return f != 0
	case String:
		return v.s != ""
	case Array:
		return len(v.arr) > 0
	case Object:
		return len(v.obj) > 0
	}
	return false
}

// reminderName names a reminder that has none; a variable for tests.
var reminderName = uuid1

// uuid1 is Python's str(uuid.uuid1()), the name Rasa gives a reminder that
// has none.
func uuid1() string {
	id, err := uuid.NewUUID()
	if err != nil {
		return NewID() // no clock sequence available: still unique
	}
	return id.String()
}
