package tracker

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/parleyhq/parley/event"
)

// Domain is what parley reads of a Rasa domain.yml: its slots and its
// session_config. Rasa's tracker lists every domain slot in GET tracker
// (unset ones with their initial value), ignores slot events for slots
// the domain lacks, and starts sessions as session_config says.
type Domain struct {
	// File is where the domain was read from ("" for none).
	File string
	// Slots are in Rasa's order: the domain's, then the ones Rasa adds
	// (requested_slot when there are forms, the knowledge base slots when
	// action_query_knowledge_base is an action, session_started_metadata).
	Slots []DomainSlot
	// Session is session_config.
	Session SessionConfig
}

// DomainSlot is one slot of a domain.
type DomainSlot struct {
	Name string
	// Type is Rasa's slot type name: text, bool, float, list,
	// categorical, any, or a custom class path.
	Type string
	// Initial is initial_value (null by default).
	Initial event.Value
}

// SessionConfig is a domain's session_config.
type SessionConfig struct {
	// ExpirationMinutes is session_expiration_time (default 60; 0 turns
	// sessions off).
	ExpirationMinutes float64
	// CarryOverSlots is carry_over_slots_to_new_session (default true).
	CarryOverSlots bool
}

// DefaultSessionConfig is Rasa's, used without a domain.
var DefaultSessionConfig = SessionConfig{ExpirationMinutes: 60, CarryOverSlots: true}

// ErrDomain is returned for a domain file parley cannot read.
var ErrDomain = errors.New("invalid domain")

// The slots Rasa adds to every domain (rasa/shared/core/constants.py).
const (
	slotSessionStartMetadata = "session_started_metadata"
	slotRequested            = "requested_slot"
	actionQueryKnowledgeBase = "action_query_knowledge_base"
)

var knowledgeBaseSlots = []string{"knowledge_base_listed_objects", "knowledge_base_last_object", "knowledge_base_last_object_type"}

var slotTypes = map[string]bool{"text": true, "bool": true, "float": true, "list": true, "categorical": true, "any": true}

// LoadDomain reads a domain file.
func LoadDomain(path string) (*Domain, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("domain: %w", err)
	}
	return ParseDomain(path, data)
}

// ParseDomain reads a domain from data; file names it in errors.
func ParseDomain(file string, data []byte) (*Domain, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDomain, file, err)
	}
	d := &Domain{File: file, Session: DefaultSessionConfig}
	if len(doc.Content) == 0 {
		d.addDefaultSlots(nil)
		return d, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s line %d: the domain must be a mapping", ErrDomain, file, root.Line)
	}
	errf := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%w: %s line %d: %s", ErrDomain, file, n.Line, fmt.Sprintf(format, args...))
	}
	var top = map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		top[root.Content[i].Value] = root.Content[i+1]
	}
	if n := top["slots"]; n != nil && n.Tag != "!!null" {
		if n.Kind != yaml.MappingNode {
			return nil, errf(n, "slots must be a mapping of slot names")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name, spec := n.Content[i].Value, n.Content[i+1]
			s := DomainSlot{Name: name}
			if spec.Kind != yaml.MappingNode {
				return nil, errf(spec, "slot %q must be a mapping with a type", name)
			}
			for j := 0; j+1 < len(spec.Content); j += 2 {
				k, v := spec.Content[j].Value, spec.Content[j+1]
				switch k {
				case "type":
					s.Type = v.Value
				case "initial_value":
					val, err := yamlValue(v)
					if err != nil {
						return nil, errf(v, "slot %q initial_value: %v", name, err)
					}
					s.Initial = val
				}
			}
			if s.Type == "" {
				return nil, errf(spec, "slot %q has no type", name)
			}
			if !slotTypes[s.Type] && !isClassPath(s.Type) {
				return nil, errf(spec, "slot %q has the unknown type %q (Rasa's: text, bool, float, list, categorical, any, or a custom class path)", name, s.Type)
			}
			d.Slots = append(d.Slots, s)
		}
	}
	if n := top["session_config"]; n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			switch k {
			case "session_expiration_time":
				if v.Tag == "!!null" {
					continue
				}
				f, err := strconv.ParseFloat(v.Value, 64)
				if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
					return nil, errf(v, "session_config.session_expiration_time must be a number of minutes, got %q", v.Value)
				}
				d.Session.ExpirationMinutes = f
			case "carry_over_slots_to_new_session":
				var b bool
				if err := v.Decode(&b); err != nil {
					return nil, errf(v, "session_config.carry_over_slots_to_new_session must be true or false, got %q", v.Value)
				}
				d.Session.CarryOverSlots = b
			}
		}
	}
	d.addDefaultSlots(top)
	return d, nil
}

// addDefaultSlots is Domain._add_default_slots.
func (d *Domain) addDefaultSlots(top map[string]*yaml.Node) {
	has := map[string]bool{}
	for _, s := range d.Slots {
		has[s.Name] = true
	}
	add := func(name, typ string) {
		if !has[name] {
			has[name] = true
			d.Slots = append(d.Slots, DomainSlot{Name: name, Type: typ})
		}
	}
	if f := top["forms"]; f != nil && f.Kind == yaml.MappingNode && len(f.Content) > 0 {
		add(slotRequested, "text")
	}
	if a := top["actions"]; a != nil && a.Kind == yaml.SequenceNode {
		for _, n := range a.Content {
			name := n.Value
			if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
				name = n.Content[0].Value // - action_x: {send_domain: true}
			}
			if name == actionQueryKnowledgeBase {
				for _, s := range knowledgeBaseSlots {
					add(s, "text")
				}
			}
		}
	}
	add(slotSessionStartMetadata, "any")
}

// Describe summarizes the domain for logs.
func (d *Domain) Describe() string {
	if d == nil {
		return fmt.Sprintf("none (Rasa's session defaults: %s; slots as events set them)", DefaultSessionConfig)
	}
	return fmt.Sprintf("%s: %d slots; %s", d.File, len(d.Slots), d.Session)
}

func (c SessionConfig) String() string {
	return fmt.Sprintf("session_expiration_time %g min, carry_over_slots_to_new_session %t", c.ExpirationMinutes, c.CarryOverSlots)
}

func isClassPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return i > 0 && i < len(s)-1
		}
	}
	return false
}

// yamlValue converts a YAML value to JSON as Rasa's YAML reader and
// json.dumps would: ints stay ints, floats print as Python floats.
func yamlValue(n *yaml.Node) (event.Value, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return yamlValue(n.Alias)
	case yaml.SequenceNode:
		vs := make([]event.Value, len(n.Content))
		for i, c := range n.Content {
			v, err := yamlValue(c)
			if err != nil {
				return event.Value{}, err
			}
			vs[i] = v
		}
		return event.ArrayValue(vs...), nil
	case yaml.MappingNode:
		ms := make([]event.Member, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := yamlValue(n.Content[i+1])
			if err != nil {
				return event.Value{}, err
			}
			ms = append(ms, event.Member{Key: n.Content[i].Value, Value: v})
		}
		return event.ObjectValue(ms...), nil
	}
	switch n.Tag {
	case "!!null":
		return event.NullValue(), nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return event.Value{}, err
		}
		return event.BoolValue(b), nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return event.Value{}, err
		}
		return event.IntValue(i), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return event.Value{}, err
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return event.Value{}, errors.New("JSON has no infinite or NaN numbers")
		}
		return event.FloatValue(f), nil
	}
	return event.StringValue(n.Value), nil
}
