package event

// The type names Rasa writes in the "event" field.
const (
	TypeUser                    = "user"
	TypeUserFeaturization       = "user_featurization"
	TypeEntities                = "entities"
	TypeBot                     = "bot"
	TypeSlot                    = "slot"
	TypeRestart                 = "restart"
	TypeRewind                  = "rewind"
	TypeResetSlots              = "reset_slots"
	TypeReminder                = "reminder"
	TypeCancelReminder          = "cancel_reminder"
	TypeUndo                    = "undo"
	TypeExport                  = "export"
	TypeFollowup                = "followup"
	TypePause                   = "pause"
	TypeResume                  = "resume"
	TypeAction                  = "action"
	TypeAgent                   = "agent"
	TypeActiveLoop              = "active_loop"
	TypeLoopInterrupted         = "loop_interrupted"
	TypeActionExecutionRejected = "action_execution_rejected"
	TypeSessionStarted          = "session_started"
	// TypeForm and TypeFormValidation are Rasa 1.x names that Rasa 2+ still
	// reads as active_loop and loop_interrupted.
	TypeForm           = "form"
	TypeFormValidation = "form_validation"
)

// kinds is a set of Kinds a field may have.
type kinds uint8

func oneOf(ks ...Kind) kinds {
	var s kinds
	for _, k := range ks {
		s |= 1 << k
	}
	return s
}

func (s kinds) has(k Kind) bool { return s&(1<<k) != 0 }

func (s kinds) String() string {
	out := ""
	for k := Null; k <= Object; k++ {
		if s.has(k) {
			if out != "" {
				out += " or "
			}
			out += k.String()
		}
	}
	return out
}

var (
	anyKind     = oneOf(Null, Bool, Number, String, Array, Object)
	optString   = oneOf(String, Null)
	optNumber   = oneOf(Number, Null)
	optObject   = oneOf(Object, Null)
	optArray    = oneOf(Array, Null)
	boolOrNull  = oneOf(Bool, Null)
	requiredStr = oneOf(String)
)

// fieldSpec is what Rasa's event class reads from a field.
type fieldSpec struct {
	name     string
	kinds    kinds
	required bool
}

// typeSpecs lists, per known type, the fields its Rasa class reads, with
// the JSON types Rasa produces for them. Fields not listed (and unknown
// types) pass through unchecked.
var typeSpecs = map[string][]fieldSpec{
	TypeUser: {
		{name: "text", kinds: optString},
		{name: "parse_data", kinds: optObject},
		{name: "input_channel", kinds: optString},
		{name: "message_id", kinds: optString},
	},
	TypeUserFeaturization: {{name: "use_text_for_featurization", kinds: boolOrNull}},
	TypeEntities:          {{name: "entities", kinds: optArray}},
	TypeBot:               {{name: "text", kinds: optString}, {name: "data", kinds: optObject}},
	TypeAgent:             {{name: "text", kinds: optString}, {name: "data", kinds: anyKind}},
	TypeSlot:              {{name: "name", kinds: requiredStr, required: true}, {name: "value", kinds: anyKind}},
	TypeReminder: {
		{name: "intent", kinds: optString},
		{name: "entities", kinds: optArray},
		{name: "date_time", kinds: requiredStr, required: true},
		{name: "name", kinds: optString},
		{name: "kill_on_user_msg", kinds: boolOrNull},
	},
	TypeCancelReminder: {
		{name: "name", kinds: optString},
		{name: "intent", kinds: optString},
		{name: "entities", kinds: optArray},
	},
	TypeExport:   {{name: "path", kinds: optString}},
	TypeFollowup: {{name: "name", kinds: requiredStr, required: true}},
	TypeAction: {
		{name: "name", kinds: optString},
		{name: "policy", kinds: optString},
		{name: "confidence", kinds: optNumber},
		{name: "action_text", kinds: optString},
		{name: "hide_rule_turn", kinds: boolOrNull},
	},
	TypeActiveLoop:      {{name: "name", kinds: optString}},
	TypeForm:            {{name: "name", kinds: optString}},
	TypeLoopInterrupted: {{name: "is_interrupted", kinds: boolOrNull}},
	TypeFormValidation:  {{name: "validate", kinds: boolOrNull}},
	TypeActionExecutionRejected: {
		{name: "name", kinds: requiredStr, required: true},
		{name: "policy", kinds: optString},
		{name: "confidence", kinds: optNumber},
	},
	TypeRestart:        nil,
	TypeRewind:         nil,
	TypeResetSlots:     nil,
	TypeUndo:           nil,
	TypePause:          nil,
	TypeResume:         nil,
	TypeSessionStarted: nil,
}

// KnownType reports whether t is one of Rasa's event types (legacy names
// included). Unknown types are still accepted and passed through.
func KnownType(t string) bool {
	_, ok := typeSpecs[t]
	return ok
}
