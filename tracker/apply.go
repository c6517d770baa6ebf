package tracker

import (
	"errors"
	"math/big"

	"github.com/parleyhq/parley/event"
)

// This file applies events to a tracker the way Rasa 3.6's Event.apply_to
// methods and DialogueStateTracker.applied_events do. Each rule names the
// Rasa code it mirrors, since the point is to match it, quirks included.

const (
	actionListen       = "action_listen"
	actionSessionStart = "action_session_start"
	// shouldNotBeSet is Rasa's SHOULD_NOT_BE_SET loop name, which counts as
	// no active loop.
	shouldNotBeSet = "should_not_be_set"
)

// state is what DialogueStateTracker._reset initializes.
type state struct {
	slots        *slots
	paused       bool
	followup     event.Value // string or null
	latestAction event.Value // {}, {"action_name": n} or {"action_text": t}
	latestMsg    *userMsg
	activeLoop   *activeLoop
}

// reset is DialogueStateTracker._reset.
func (s *state) reset() {
	s.slots.reset()
	s.paused = false
	s.latestAction = event.ObjectValue()
	s.latestMsg = emptyUserMsg()
	s.followup = event.StringValue(actionListen)
	s.activeLoop = nil
}

// activeLoop is Rasa's TrackerActiveLoop.
type activeLoop struct {
	name          event.Value
	isInterrupted event.Value // a bool, or whatever loop_interrupted carried
	rejected      bool
	trigger       *userMsg // the latest message when the loop started
}

// loopName is DialogueStateTracker.active_loop_name.
func (s *state) loopName() (string, bool) {
	if s.activeLoop == nil || s.activeLoop.name.Kind() != event.String || s.activeLoop.name.Str() == shouldNotBeSet {
		return "", false
	}
	return s.activeLoop.name.Str(), true
}

// userMsg is the part of a UserUttered object the state shows.
type userMsg struct {
	// parseData is UserUttered.parse_data: Rasa's defaults (intent,
	// entities, text, message_id, metadata) updated with the event's own
	// parse_data, so extra keys such as intent_ranking follow.
	parseData event.Value
	// entities is UserUttered.entities, to which entities events append.
	entities []event.Value
	// aliased: parse_data["entities"] is the very list in entities, which
	// happens when the event's parse_data has a non-empty entities list, so
	// appended entities show in parse_data (and trigger_message) too.
	aliased bool
}

// emptyParseData is UserUttered.empty().parse_data. Values are immutable,
// so every empty message shares it.
var emptyParseData = event.ObjectValue(
	event.Member{Key: "intent", Value: event.ObjectValue()},
	event.Member{Key: "entities", Value: event.ArrayValue()},
	event.Member{Key: "text", Value: event.NullValue()},
	event.Member{Key: "message_id", Value: event.NullValue()},
	event.Member{Key: "metadata", Value: event.ObjectValue()},
)

// emptyUserMsg is a new UserUttered.empty(): a new object each time,
// since entities events may append to it.
func emptyUserMsg() *userMsg { return &userMsg{parseData: emptyParseData} }

// newUserMsg builds the message of a user event as UserUttered's
// constructor does from _from_parse_data.
func newUserMsg(ev event.Event) *userMsg {
	given, _ := ev.Get("parse_data")
	intent, _ := given.Get("intent")
	if !truthy(intent) {
		intent = event.ObjectValue()
	}
	m := &userMsg{}
	if ents, ok := given.Get("entities"); ok && ents.Kind() == event.Array && ents.Len() > 0 {
		m.entities = append([]event.Value(nil), ents.Elems()...)
		m.aliased = true
	}
	text, _ := ev.Get("text")
	msgID, _ := ev.Get("message_id")
	md, _ := ev.Get("metadata")
	if md.Kind() != event.Object {
		md = event.ObjectValue() // metadata or {}
	}
	pd := event.ObjectValue(
		event.Member{Key: "intent", Value: intent},
		event.Member{Key: "entities", Value: event.ArrayValue(append([]event.Value(nil), m.entities...)...)},
		event.Member{Key: "text", Value: text},
		event.Member{Key: "message_id", Value: msgID},
		event.Member{Key: "metadata", Value: md},
	)
	for _, mem := range given.Members() {
		pd = pd.With(mem.Key, mem.Value)
	}
	m.parseData = pd
	return m
}

// parseDataValue is the object Rasa holds in parse_data now.
func (m *userMsg) parseDataValue() event.Value {
	if m.aliased {
		return m.parseData.With("entities", event.ArrayValue(append([]event.Value(nil), m.entities...)...))
	}
	return m.parseData
}

// latestMessageValue is DialogueStateTracker._latest_message_data: a copy
// of parse_data with "entities" replaced by the message's entities.
func (m *userMsg) latestMessageValue() event.Value {
	return m.parseData.With("entities", event.ArrayValue(append([]event.Value(nil), m.entities...)...))
}

// slots is an ordered slot dictionary. Unfixed, it is Rasa's AnySlotDict,
// where setting any name creates the slot; fixed, it is the dict of a
// domain's slots (or the one init_copy makes), where unknown names are
// ignored.
type slots struct {
	names  []string
	values map[string]event.Value
	fixed  bool
	// initial holds the slots' initial values (absent: null), list the
	// names of list slots, whose setter wraps a single value in a list.
	initial map[string]event.Value
	list    map[string]bool
}

func newSlots(fixed bool) *slots { return &slots{values: map[string]event.Value{}, fixed: fixed} }

// domainSlots are a domain's slots, at their initial values.
func domainSlots(d *Domain) *slots {
	s := &slots{values: map[string]event.Value{}, fixed: true, initial: map[string]event.Value{}, list: map[string]bool{}}
	for _, sl := range d.Slots {
		if _, dup := s.values[sl.Name]; dup {
			continue
		}
		s.names = append(s.names, sl.Name)
		s.initial[sl.Name] = sl.Initial
		s.list[sl.Name] = sl.Type == "list"
		s.values[sl.Name] = sl.Initial
	}
	s.reset()
	return s
}

func (s *slots) set(name string, v event.Value) {
	if _, ok := s.values[name]; !ok {
		if s.fixed {
			return
		}
		s.names = append(s.names, name)
	}
	// ListSlot.value's setter: a truthy non-list becomes a one-item list.
	if s.list[name] && truthy(v) && v.Kind() != event.Array {
		v = event.ArrayValue(v)
	}
	s.values[name] = v
}

// reset is Slot.reset on every slot: back to the initial value, through
// the setter.
func (s *slots) reset() {
	for _, n := range s.names {
		s.values[n] = event.NullValue()
		s.set(n, s.initial[n])
	}
}

func (s *slots) fixedCopy() *slots {
	c := newSlots(true)
	c.initial, c.list = s.initial, s.list
	for _, n := range s.names {
		c.names = append(c.names, n)
		c.values[n] = event.NullValue()
	}
	c.reset()
	return c
}

func (s *slots) members() []event.Member {
	ms := make([]event.Member, len(s.names))
	for i, n := range s.names {
		ms[i] = event.Member{Key: n, Value: s.values[n]}
	}
	return ms
}

// msg returns the user message of event i, made once.
func (t *Tracker) msg(i int) *userMsg {
	if t.msgs[i] == nil {
		t.msgs[i] = newUserMsg(t.events[i])
	}
	return t.msgs[i]
}

// kind is an event type, resolved once per event so that replays do not
// look keys up again.
type kind uint8

const (
	kOther kind = iota
	kUser
	kUserFeaturization
	kEntities
	kSlot
	kRestart
	kRewind
	kUndo
	kResetSlots
	kFollowup
	kPause
	kResume
	kAction
	kActiveLoop // active_loop and the legacy form
	kLoopInterrupted
	kFormValidation
	kRejected
	kSessionStarted
)

var kinds = map[string]kind{
	event.TypeUser: kUser, event.TypeUserFeaturization: kUserFeaturization, event.TypeEntities: kEntities,
	event.TypeSlot: kSlot, event.TypeRestart: kRestart, event.TypeRewind: kRewind, event.TypeUndo: kUndo,
	event.TypeResetSlots: kResetSlots, event.TypeFollowup: kFollowup, event.TypePause: kPause,
	event.TypeResume: kResume, event.TypeAction: kAction, event.TypeActiveLoop: kActiveLoop, event.TypeForm: kActiveLoop,
	event.TypeLoopInterrupted: kLoopInterrupted, event.TypeFormValidation: kFormValidation,
	event.TypeActionExecutionRejected: kRejected, event.TypeSessionStarted: kSessionStarted,
}

// evInfo is what applying an event needs, read from it once.
type evInfo struct {
	kind kind
	name event.Value // the "name" field, null when absent
	sub  event.Value // action: ActionExecuted.as_sub_state
}

// isName reports whether the event's name is the string n.
func (e *evInfo) isName(n string) bool { return e.name.Kind() == event.String && e.name.Str() == n }

func infoOf(ev event.Event) evInfo {
	in := evInfo{kind: kinds[ev.Type()]}
	in.name, _ = ev.Get("name")
	if in.kind == kAction {
		in.sub = actionSubState(ev)
	}
	return in
}

// maxWork bounds the events a tracker's undo and rewind replays may visit
// (Rasa's algorithm is quadratic in them). No real conversation comes
// near it; a crafted one gets ErrTooComplex instead of pinning a CPU.
var maxWork int64 = 200_000_000 // a variable for tests

// ErrTooComplex is returned by Tracker.Err when replaying the
// conversation's undo and rewind events would take too long.
var ErrTooComplex = errors.New("the conversation has too many undo and rewind events to derive its state")

// apply runs the apply_to method of event i's class. Like
// DialogueStateTracker.update, which appends before applying, the events
// up to and including i are the tracker's events, which rewind and undo
// replay.
func (t *Tracker) apply(i int) {
	s := &t.st
	in := &t.info[i]
	switch in.kind {
	case kUser:
		s.latestMsg = t.msg(i)
		s.followup = event.NullValue()
	case kEntities:
		// EntitiesAdded: entities belong to the last user message, which is
		// always followed by action_listen.
		if !t.latestActionIsListen() {
			return
		}
		ents, _ := t.events[i].Get("entities")
		for _, e := range ents.Elems() {
			if !containsPy(s.latestMsg.entities, e) {
				s.latestMsg.entities = append(s.latestMsg.entities, e)
			}
		}
	case kSlot:
		if in.name.Kind() == event.String {
			v, _ := t.events[i].Get("value")
			s.slots.set(in.name.Str(), v)
		}
	case kRestart:
		s.reset()
		s.followup = event.StringValue(actionSessionStart)
	case kRewind, kUndo:
		s.reset()
		if t.work += int64(i + 1); t.work > maxWork {
			t.err = ErrTooComplex
			return
		}
		applied := appliedEvents(t.info[:i+1])
		t.work += int64(len(applied))
		for _, j := range applied {
			t.apply(j)
		}
	case kResetSlots:
		s.slots.reset()
	case kFollowup:
		s.followup = in.name
	case kPause:
		s.paused = true
	case kResume:
		s.paused = false
	case kAction:
		t.setLatestAction(in.sub)
		s.followup = event.NullValue()
	case kActiveLoop:
		if in.name.IsNull() {
			s.activeLoop = nil
			return
		}
		s.activeLoop = &activeLoop{name: in.name, isInterrupted: event.BoolValue(false), trigger: s.latestMsg}
	case kLoopInterrupted:
		if s.activeLoop != nil {
			v, ok := t.events[i].Get("is_interrupted")
			if !ok {
				v = event.BoolValue(false)
			}
			s.activeLoop.isInterrupted = v
		}
	case kFormValidation:
		// LegacyFormValidation: is_interrupted = not validate (default True).
		if s.activeLoop != nil {
			v, ok := t.events[i].Get("validate")
			s.activeLoop.isInterrupted = event.BoolValue(ok && !truthy(v))
		}
	case kRejected:
		if name, ok := s.loopName(); ok && in.isName(name) {
			s.activeLoop.rejected = true
		}
	case kSessionStarted:
		s.reset()
	}
	// user_featurization changes only use_text_for_featurization, which the
	// state does not show; bot, agent, reminder, cancel_reminder and export
	// change nothing (Rasa's export writes a story file, which parley does
	// not); unknown types are kept but ignored.
}

// latestActionIsListen is latest_action_name == "action_listen".
func (t *Tracker) latestActionIsListen() bool {
	n := t.LatestActionName()
	return n.Kind() == event.String && n.Str() == actionListen
}

// actionSubState is ActionExecuted.as_sub_state.
func actionSubState(ev event.Event) event.Value {
	if n, _ := ev.Get("name"); truthy(n) {
		return event.ObjectValue(event.Member{Key: "action_name", Value: n})
	}
	txt, _ := ev.Get("action_text")
	return event.ObjectValue(event.Member{Key: "action_text", Value: txt})
}

// setLatestAction is DialogueStateTracker.set_latest_action.
func (t *Tracker) setLatestAction(sub event.Value) {
	s := &t.st
	s.latestAction = sub
	loop, hasLoop := s.loopName()
	if s.activeLoop != nil && hasLoop {
		s.activeLoop.isInterrupted = event.BoolValue(false)
	}
	if s.activeLoop != nil {
		// action.get("action_name") == active_loop_name, None == None included.
		n, ok := sub.Get("action_name")
		if (ok && n.Kind() == event.String && hasLoop && n.Str() == loop) || (!ok && !hasLoop) {
			s.activeLoop.rejected = false
		}
	}
}

// appliedEvents is DialogueStateTracker.applied_events: the indexes of
// the events that make up the state, without those reverted.
func appliedEvents(info []evInfo) []int {
	var loopNames map[string]bool
	for k := range info {
		if in := &info[k]; in.kind == kActiveLoop && in.name.Kind() == event.String && in.name.Str() != "" {
			if loopNames == nil {
				loopNames = map[string]bool{}
			}
			loopNames[in.name.Str()] = true
		}
	}
	applied := make([]int, 0, len(info))
	for i := range info {
		in := &info[i]
		switch in.kind {
		case kRestart, kSessionStarted:
			applied = applied[:0]
			continue
		case kUndo:
			applied = undoTillPrevious(info, applied, kAction)
			continue
		case kRewind:
			// A user message implies the action_listen before it, so both go.
			applied = undoTillPrevious(info, applied, kUser)
			applied = undoTillPrevious(info, applied, kAction)
			continue
		case kAction:
			if in.name.Kind() == event.String && loopNames[in.name.Str()] && !firstLoopExecutionOrUnhappyPath(info, applied, in.name.Str()) {
				applied = undoTillPreviousLoopExecution(info, applied, in.name.Str())
				continue
			}
		}
		applied = append(applied, i)
	}
	return applied
}

// undoTillPrevious is DialogueStateTracker._undo_till_previous: drop
// events from the end up to and including the last one of kind k.
func undoTillPrevious(info []evInfo, applied []int, k kind) []int {
	for len(applied) > 0 {
		last := applied[len(applied)-1]
		applied = applied[:len(applied)-1]
		if info[last].kind == k {
			break
		}
	}
	return applied
}

// firstLoopExecutionOrUnhappyPath is
// DialogueStateTracker._first_loop_execution_or_unhappy_path.
func firstLoopExecutionOrUnhappyPath(info []evInfo, applied []int, loop string) bool {
	var next event.Value // the action after, in time, of the one looked at
	hasNext := false
	for k := len(applied) - 1; k >= 0; k-- {
		in := &info[applied[k]]
		switch in.kind {
		case kActiveLoop:
			// A deactivation means this run of the loop is its first.
			if in.name.IsNull() {
				return true
			}
		case kRejected:
			if in.isName(loop) {
				return true
			}
		case kUser:
			// next_action is not None and next_action != loop
			if hasNext && !next.IsNull() && !(next.Kind() == event.String && next.Str() == loop) {
				return true
			}
		case kAction:
			if in.isName(loop) {
				return false
			}
			next, hasNext = in.name, true
		}
	}
	return true
}

// undoTillPreviousLoopExecution is
// DialogueStateTracker._undo_till_previous_loop_execution: remove the
// actions and user messages back to the loop's previous execution.
func undoTillPreviousLoopExecution(info []evInfo, applied []int, loop string) []int {
	for k := len(applied) - 1; k >= 0; k-- {
		in := &info[applied[k]]
		switch in.kind {
		case kAction:
			if in.isName(loop) {
				return applied
			}
		case kUser, kUserFeaturization:
		default:
			continue
		}
		applied = append(applied[:k], applied[k+1:]...)
	}
	return applied
}

// truthy is Python's bool(v) for a JSON value.
func truthy(v event.Value) bool {
	switch v.Kind() {
	case event.Null:
		return false
	case event.Bool:
		return v.Bool()
	case event.Number:
		f, _ := v.Float()
		return f != 0
	case event.String:
		return v.Str() != ""
	case event.Array, event.Object:
		return v.Len() > 0
	}
	return false
}

// containsPy is Python's `x in list` for JSON values.
func containsPy(list []event.Value, x event.Value) bool {
	for _, e := range list {
		if pyEqual(e, x) {
			return true
		}
	}
	return false
}

// pyEqual is Python's == on values json.loads made: dicts compare without
// regard to key order, numbers by value (1 == 1.0), and booleans equal the
// numbers 1 and 0.
func pyEqual(a, b event.Value) bool {
	if num, ok := pyNumber(a); ok {
		other, ok := pyNumber(b)
		return ok && num.Cmp(other) == 0
	}
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case event.Null:
		return true
	case event.String:
		return a.Str() == b.Str()
	case event.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Elems() {
			if !pyEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case event.Object:
		if a.Len() != b.Len() {
			return false
		}
		for _, m := range a.Members() {
			bv, ok := b.Get(m.Key)
			if !ok || !pyEqual(m.Value, bv) {
				return false
			}
		}
		return true
	}
	return false
}

// pyNumber returns a number or boolean as an exact rational.
func pyNumber(v event.Value) (*big.Rat, bool) {
	switch v.Kind() {
	case event.Bool:
		if v.Bool() {
			return big.NewRat(1, 1), true
		}
		return new(big.Rat), true
	case event.Number:
		if v.IsInteger() {
			r, ok := new(big.Rat).SetString(v.NumberText())
			return r, ok
		}
		f, _ := v.Float()
		r := new(big.Rat)
		if r.SetFloat64(f) == nil {
			return nil, false
		}
		return r, true
	}
	return nil, false
}
