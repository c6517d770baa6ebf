package privacy

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/config"
)

// DefaultSet is the id of the rule set in privacy.rules, used by every
// event_broker entry without a privacy key.
const DefaultSet = "default"

// Defaults of the privacy section.
const (
	DefaultHashKeyEnv       = "PARLEY_PRIVACY_HASH_KEY"
	DefaultMinValueLength   = 3
	DefaultValueTTL         = 24 * time.Hour
	DefaultMaxValues        = 64
	DefaultMaxConversations = 100_000
	DefaultHold             = 100 * time.Millisecond
	minHashKeyBytes         = 16
)

// ErrNoHashKey is returned when a rule hashes and the key's environment
// variable is unset or too short.
var ErrNoHashKey = errors.New("no hash key")

// Rule is one entry of a rule list: what to find and how to anonymize it.
// Exactly one of Slot, Entity and Recognizer is set.
type Rule struct {
	// Slot names a PII slot (Rasa 3.13 `slot`): its slot events, and its
	// value wherever it appears in the conversation's events.
	Slot string
	// Entity names an extracted entity (parley `entity`): the entity's
	// value wherever it appears in the conversation's events.
	Entity string
	// Recognizer names a registered recognizer (parley `recognizer`:
	// email, phone, credit_card, iban, or your own).
	Recognizer string
	// Anonymization is how the value is replaced (`anonymization`).
	Anonymization Anonymization

	rec Recognizer
	// Label names the rule in metrics: slot:NAME, entity:NAME or
	// recognizer:NAME.
	Label string
}

// RuleSet is a named list of rules (Rasa 3.6's rule_lists[].id).
type RuleSet struct {
	ID    string
	Rules []*Rule

	bySlot   map[string]*Rule
	byEntity map[string]*Rule
	recs     []*Rule
	names    nameTokens // a quick test for events naming bySlot or byEntity
}

// Empty reports whether the set anonymizes nothing.
func (s *RuleSet) Empty() bool { return s == nil || len(s.Rules) == 0 }

// Config is the privacy section of endpoints.yml.
type Config struct {
	// Sets are the rule sets by id: DefaultSet from `rules`, the others
	// from `rule_lists`.
	Sets map[string]*RuleSet
	// Brokers holds, for each event_broker section in order, the id of its
	// rule set, or "" for a broker that receives pristine events (the
	// section's parley key privacy: none).
	Brokers []string
	// HashKeyEnv names the environment variable holding the HMAC key
	// (`hash_key_env`, default PARLEY_PRIVACY_HASH_KEY). The key itself is
	// never printed.
	HashKeyEnv string
	// MinValueLength is the shortest learned slot or entity value searched
	// for in text (`min_value_length`, default 3): shorter ones ("no",
	// "1") would blank out unrelated words. The slot event itself is always
	// anonymized.
	MinValueLength int
	// ValueTTL is how long a learned value is kept for its conversation
	// after it was last seen (`value_ttl`, default 24h).
	ValueTTL time.Duration
	// MaxValues caps the values kept per conversation (`max_values`,
	// default 64); the oldest go first.
	MaxValues int
	// MaxConversations caps the conversations whose values are cached in
	// memory (`max_conversations`, default 100000).
	MaxConversations int
	// Hold is the shortest delivery linger while privacy rules are active
	// (`hold`, default 100ms, at most 1s): an idle broker worker waits this
	// long for the rest of a turn posted event by event, so that a slot
	// event and the user message before it are anonymized together.
	Hold time.Duration
	// Logs applies the default rule set's recognizers to parley's own log
	// lines (`logs`, default true).
	Logs bool
	// DeadLetters writes dead letters anonymized with the broker's rule
	// set (`dead_letters`, default true).
	DeadLetters bool
	// Export applies each broker's rule set to `parley export` too
	// (`export`, default true); false exports pristine events everywhere.
	Export bool

	// Warnings are the section's warnings (unknown keys...), positioned.
	Warnings []string

	hashKey []byte
}

// collector gathers the errors and warnings of the privacy section's
// subsections, each already naming its file, line and key.
type collector struct {
	errs  []error
	warns []string
}

func (k *collector) take(s *config.Section) {
	k.warns = append(k.warns, s.Warnings()...)
	if err := s.Err(); err != nil {
		k.errs = append(k.errs, err)
	}
}

// Active reports whether any broker anonymizes.
func (c *Config) Active() bool {
	if c == nil {
		return false
	}
	for _, id := range c.Brokers {
		if id != "" && !c.Sets[id].Empty() {
			return true
		}
	}
	return false
}

// Set returns the rule set of event_broker entry i, or nil (pristine).
func (c *Config) Set(i int) *RuleSet {
	if c == nil || i >= len(c.Brokers) || c.Brokers[i] == "" {
		return nil
	}
	if s := c.Sets[c.Brokers[i]]; !s.Empty() {
		return s
	}
	return nil
}

// pristineWords opt a broker out in its privacy key.
var pristineWords = map[string]bool{"none": true, "pristine": true, "false": true, "off": true, "no": true}

// ParseConfig decodes and validates the privacy section (sec may be nil:
// no anonymization) and the privacy key of each event_broker section,
// without I/O. It reads the hash key from the environment when a rule
// hashes. Errors name the file, line and key.
func ParseConfig(sec *config.Section, brokers []*config.Section) (*Config, error) {
	c := &Config{
		Sets: map[string]*RuleSet{}, HashKeyEnv: DefaultHashKeyEnv, MinValueLength: DefaultMinValueLength,
		ValueTTL: DefaultValueTTL, MaxValues: DefaultMaxValues, MaxConversations: DefaultMaxConversations,
		Hold: DefaultHold, Logs: true, DeadLetters: true, Export: true,
	}
	k := &collector{}
	if sec != nil {
		c.HashKeyEnv = sec.String("hash_key_env", c.HashKeyEnv)
		c.MinValueLength = sec.Int("min_value_length", c.MinValueLength)
		c.ValueTTL = sec.Duration("value_ttl", c.ValueTTL)
		c.MaxValues = sec.Int("max_values", c.MaxValues)
		c.MaxConversations = sec.Int("max_conversations", c.MaxConversations)
		c.Hold = sec.Duration("hold", c.Hold)
		c.Logs = sec.Bool("logs", c.Logs)
		c.DeadLetters = sec.Bool("dead_letters", c.DeadLetters)
		c.Export = sec.Bool("export", c.Export)
		if c.MinValueLength < 1 {
			sec.Errorf("min_value_length", "must be at least 1")
		}
		if c.MaxValues < 1 {
			sec.Errorf("max_values", "must be at least 1")
		}
		if c.MaxConversations < 1 {
			sec.Errorf("max_conversations", "must be at least 1")
		}
		if c.ValueTTL <= 0 {
			sec.Errorf("value_ttl", "must be positive")
		}
		if c.Hold > time.Second {
			sec.Errorf("hold", "must be at most 1s (it delays every idle delivery)")
		}
		var hashes bool
		if sec.Has("rules") {
			c.Sets[DefaultSet] = parseRules(sec, "rules", DefaultSet, &hashes, k)
		}
		for _, l := range sec.SubList("rule_lists") {
			id := l.String("id", "")
			switch {
			case id == "":
				l.Errorf("", "a rule list needs an id")
			case c.Sets[id] != nil:
				l.Errorf("id", "rule list id %q is used twice (the privacy.rules list is %q)", id, DefaultSet)
			case pristineWords[strings.ToLower(id)]:
				l.Errorf("id", "%q means pristine events in an event_broker's privacy key; choose another id", id)
			default:
				c.Sets[id] = parseRules(l, "rules", id, &hashes, k)
			}
			l.WarnUnused("privacy rule list")
			k.take(l)
		}
		// tracker_store_settings (3.13's scheduled deletion and
		// anonymization of the tracker store) is not implemented: say so.
		if sec.Has("tracker_store_settings") {
			sec.Sub("tracker_store_settings")
			sec.Warnf("tracker_store_settings", "not implemented by parley: the tracker store keeps pristine events; see docs/privacy.md")
		}
		sec.WarnUnused("privacy")
		if hashes {
			key := os.Getenv(c.HashKeyEnv)
			if len(key) < minHashKeyBytes {
				sec.Errorf("hash_key_env", "%v: a rule uses type hash, so the environment variable %s must hold a key of at least %d bytes", ErrNoHashKey, c.HashKeyEnv, minHashKeyBytes)
			}
			c.hashKey = []byte(key)
			for _, s := range c.Sets {
				for _, r := range s.Rules {
					r.Anonymization.key = c.hashKey
				}
			}
		}
		k.take(sec)
	}
	for _, b := range brokers {
		id := DefaultSet
		if b.Has("privacy") {
			id = strings.TrimSpace(b.String("privacy", ""))
			switch {
			case pristineWords[strings.ToLower(id)]:
				id = ""
			case c.Sets[id] == nil:
				k.errs = append(k.errs, b.At("privacy", "no rule list %q in the privacy section (ids: %s; none for pristine events)", id, strings.Join(c.ids(), ", ")))
				id = ""
			}
		}
		c.Brokers = append(c.Brokers, id)
	}
	c.Warnings = k.warns
	switch len(k.errs) {
	case 0:
		return c, nil
	case 1:
		return nil, k.errs[0]
	}
	return nil, config.Errors(k.errs)
}

func (c *Config) ids() []string {
	out := []string{}
	for id := range c.Sets {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func parseRules(sec *config.Section, key, id string, hashes *bool, k *collector) *RuleSet {
	set := &RuleSet{ID: id, bySlot: map[string]*Rule{}, byEntity: map[string]*Rule{}}
	for _, rs := range sec.SubList(key) {
		r := &Rule{Slot: rs.String("slot", ""), Entity: rs.String("entity", ""), Recognizer: rs.String("recognizer", "")}
		n := 0
		for _, s := range []string{r.Slot, r.Entity, r.Recognizer} {
			if s != "" {
				n++
			}
		}
		var name string
		switch {
		case n != 1:
			rs.Errorf("", "a rule names exactly one of slot, entity or recognizer")
		case r.Slot != "":
			name, r.Label = r.Slot, "slot:"+r.Slot
			if set.bySlot[r.Slot] != nil {
				rs.Errorf("slot", "slot %q has two rules in rule list %q", r.Slot, id)
			}
			set.bySlot[r.Slot] = r
		case r.Entity != "":
			name, r.Label = r.Entity, "entity:"+r.Entity
			if set.byEntity[r.Entity] != nil {
				rs.Errorf("entity", "entity %q has two rules in rule list %q", r.Entity, id)
			}
			set.byEntity[r.Entity] = r
		default:
			name, r.Label = r.Recognizer, "recognizer:"+strings.ToLower(r.Recognizer)
			rec, err := lookupRecognizer(r.Recognizer)
			if err != nil {
				rs.Errorf("recognizer", "%v", err)
			}
			r.rec = rec
			set.recs = append(set.recs, r)
		}
		a := &r.Anonymization
		a.Type, a.RedactionChar = TypeRedact, "*"
		a.label = strings.ToUpper(name)
		if an := rs.Sub("anonymization"); an != nil {
			a.Type = strings.ToLower(an.String("type", TypeRedact))
			a.RedactionChar = an.String("redaction_char", a.RedactionChar)
			a.KeepLeft = an.Int("keep_left", 0)
			a.KeepRight = an.Int("keep_right", 0)
			switch a.Type {
			case TypeRedact:
				if utf8.RuneCountInString(a.RedactionChar) != 1 {
					an.Errorf("redaction_char", "must be one character, got %q", a.RedactionChar)
				}
				if a.KeepLeft < 0 || a.KeepRight < 0 {
					an.Errorf("keep_left", "keep_left and keep_right must not be negative")
				}
			case TypeMask, TypeHash:
				if an.Has("redaction_char") || an.Has("keep_left") || an.Has("keep_right") {
					an.Warnf("type", "redaction_char, keep_left and keep_right apply to type redact only, ignored")
				}
				*hashes = *hashes || a.Type == TypeHash
			default:
				an.Errorf("type", "unknown anonymization type %q (redact, mask or hash)", a.Type)
			}
			an.WarnUnused("anonymization")
			k.take(an)
		}
		rs.WarnUnused("privacy rule")
		k.take(rs)
		set.Rules = append(set.Rules, r)
	}
	slots, entities := map[string]bool{}, map[string]bool{}
	for n := range set.bySlot {
		slots[n] = true
	}
	for n := range set.byEntity {
		entities[n] = true
	}
	set.names = newNameTokens(slots, entities)
	return set
}

// Describe returns a line per broker saying what it receives, for
// `parley config check`.
func (c *Config) Describe(names []string) []string {
	var out []string
	for i, n := range names {
		switch set := c.Set(i); {
		case set != nil:
			out = append(out, fmt.Sprintf("privacy: broker %s receives events anonymized by rule list %q (%d rules)", n, set.ID, len(set.Rules)))
		case len(c.Sets) > 0:
			out = append(out, fmt.Sprintf("privacy: broker %s receives pristine events", n))
		}
	}
	return out
}
