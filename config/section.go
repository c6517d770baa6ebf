package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Section is one mapping of endpoints.yml, such as event_broker, with typed
// accessors that remember which keys were read and collect errors that name
// the file, line and key:
//
//	port := sec.Int("port", 5672)
//	host := sec.String("host", "localhost")
//	if err := sec.Err(); err != nil { ... }
//
// Accessors return the default when a key is absent or null, so a decoder
// reads every key first and checks Err once.
type Section struct {
	file string
	path string // dotted path of the section, e.g. "event_broker" or "event_broker[1]"
	node *yaml.Node
	keys map[string]*yaml.Node // value nodes by key
	key  map[string]*yaml.Node // key nodes, for their line numbers
	used map[string]bool
	errs []error
	warn []string
}

func newSection(file, path string, node *yaml.Node) *Section {
	s := &Section{file: file, path: path, node: node, keys: map[string]*yaml.Node{}, key: map[string]*yaml.Node{}, used: map[string]bool{}}
	if node != nil && node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			s.keys[k.Value] = v
			s.key[k.Value] = k
		}
	}
	return s
}

// NewSection makes a Section from a map, for brokers built in code and in
// tests. Errors name file as the source.
func NewSection(file, path string, values map[string]any) *Section {
	var n yaml.Node
	if err := n.Encode(values); err != nil {
		panic(fmt.Sprintf("config.NewSection: %v", err)) // values are built by the caller: a bug, not input
	}
	return newSection(file, path, &n)
}

// File returns the file the section came from.
func (s *Section) File() string { return s.file }

// Path returns the section's place in the file, e.g. "event_broker[1]".
func (s *Section) Path() string { return s.path }

// Line returns the line where the section starts (0 if unknown).
func (s *Section) Line() int {
	if s.node == nil {
		return 0
	}
	return s.node.Line
}

// Type returns the lower-cased "type" key, or "" when it is absent.
func (s *Section) Type() string {
	return strings.ToLower(strings.TrimSpace(s.String("type", "")))
}

// Keys returns the section's keys in file order.
func (s *Section) Keys() []string {
	var out []string
	if s.node != nil && s.node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(s.node.Content); i += 2 {
			out = append(out, s.node.Content[i].Value)
		}
	}
	return out
}

// Has reports whether key is present with a non-null value.
func (s *Section) Has(key string) bool {
	v, ok := s.keys[key]
	return ok && !isNull(v)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// lookup marks key as read and returns its value, or nil if absent or null.
func (s *Section) lookup(key string) *yaml.Node {
	s.used[key] = true
	v, ok := s.keys[key]
	if !ok || isNull(v) {
		return nil
	}
	return v
}

// At returns an error about key positioned like Errorf's, without
// recording it on s, for checks that belong to another section's reader
// (the privacy section validating an event_broker's privacy key).
func (s *Section) At(key, format string, args ...any) *Error {
	return s.errorAt(key, fmt.Sprintf(format, args...))
}

// Errorf records an error about key (or about the section when key is "").
func (s *Section) Errorf(key, format string, args ...any) {
	s.errs = append(s.errs, s.errorAt(key, fmt.Sprintf(format, args...)))
}

// Warnf records a warning about key, reported by `parley config check` and
// logged at start-up.
func (s *Section) Warnf(key, format string, args ...any) {
	e := s.errorAt(key, fmt.Sprintf(format, args...))
	s.warn = append(s.warn, e.Error())
}

func (s *Section) errorAt(key, msg string) *Error {
	e := &Error{File: s.file, Line: s.Line(), Key: s.path, Msg: msg}
	if key != "" {
		e.Key = s.join(key)
		if v, ok := s.keys[key]; ok {
			e.Line = v.Line
		}
	}
	return e
}

// Err returns the errors recorded so far, joined, or nil.
func (s *Section) Err() error { return joinErrors(s.errs) }

// Warnings returns the warnings recorded so far.
func (s *Section) Warnings() []string { return s.warn }

// Unused returns the keys that no accessor has read, sorted; decoders call
// it last to warn about misspelt keys.
func (s *Section) Unused() []string {
	var out []string
	for k := range s.keys {
		if !s.used[k] && k != "type" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// WarnUnused records a warning for every key not read, naming the section's
// type; Rasa ignores unknown keys, so these are warnings, not errors.
func (s *Section) WarnUnused(typ string) {
	for _, k := range s.Unused() {
		s.Warnf(k, "unknown key for type %s, ignored", typ)
	}
}

// scalar returns the value of a scalar key, recording an error if the key
// holds a list or mapping.
func (s *Section) scalar(key string) (string, bool) {
	v := s.lookup(key)
	if v == nil {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		s.Errorf(key, "must be a single value, not a %s", kindName(v))
		return "", false
	}
	return v.Value, true
}

// String returns a string key. Numbers and booleans are taken as written
// ("port: 5672" read as a string is "5672").
func (s *Section) String(key, def string) string {
	v, ok := s.scalar(key)
	if !ok {
		return def
	}
	return v
}

// Int returns an integer key; quoted numbers ("5672") are accepted, as
// Rasa's int() conversions accept them.
func (s *Section) Int(key string, def int) int {
	v, ok := s.scalar(key)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 0, 64)
	if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
		if f, ferr := strconv.ParseFloat(strings.TrimSpace(v), 64); ferr == nil && f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
			return int(f)
		}
		s.Errorf(key, "%q is not a number", v)
		return def
	}
	return int(n)
}

// Float returns a numeric key.
func (s *Section) Float(key string, def float64) float64 {
	v, ok := s.scalar(key)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		s.Errorf(key, "%q is not a number", v)
		return def
	}
	return f
}

// Bool returns a boolean key. It accepts YAML's spellings (true, True,
// TRUE, yes, on, and their negatives) and the strings Rasa's Python code
// would take as such, so endpoints.yml files written for Rasa keep working.
func (s *Section) Bool(key string, def bool) bool {
	v, ok := s.scalar(key)
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "y", "1":
		return true
	case "false", "no", "off", "n", "0":
		return false
	}
	s.Errorf(key, "%q is not a boolean (use true or false)", v)
	return def
}

// Duration returns a duration key written as a Go duration ("30s", "5m")
// or as a plain number of seconds.
func (s *Section) Duration(key string, def time.Duration) time.Duration {
	v, ok := s.scalar(key)
	if !ok {
		return def
	}
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second))
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		s.Errorf(key, "%q is not a duration (e.g. 30s, 5m, or a number of seconds)", v)
		return def
	}
	return d
}

// Size returns a byte size written as a number or with a unit: 512KiB,
// 64MiB, 1GiB (KB, MB and GB are taken as powers of 1000).
func (s *Section) Size(key string, def int64) int64 {
	v, ok := s.scalar(key)
	if !ok {
		return def
	}
	n, err := ParseSize(v)
	if err != nil {
		s.Errorf(key, "%v", err)
		return def
	}
	return n
}

// ParseSize parses a byte size such as "1GiB", "64MB" or "4096".
func ParseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	units := []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}}
	mult := int64(1)
	lower := strings.ToLower(t)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult, t = u.mult, strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size (e.g. 1GiB, 512MiB, or a number of bytes)", v)
	}
	return int64(f * float64(mult)), nil
}

// StringList returns a list key written as a YAML list or as one
// comma-separated string ("a:9092,b:9092"), as Rasa accepts both for
// Kafka's url.
func (s *Section) StringList(key string, def []string) []string {
	v := s.lookup(key)
	if v == nil {
		return def
	}
	var out []string
	switch v.Kind {
	case yaml.ScalarNode:
		for _, part := range strings.Split(v.Value, ",") {
			if p := strings.TrimSpace(part); p != "" {
				out = append(out, p)
			}
		}
	case yaml.SequenceNode:
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode || isNull(item) {
				s.Errorf(key, "list items must be single values, line %d holds a %s", item.Line, kindName(item))
				return def
			}
			out = append(out, item.Value)
		}
	default:
		s.Errorf(key, "must be a list or a comma-separated string, not a %s", kindName(v))
		return def
	}
	return out
}

// Sub returns the mapping under key as a Section (nil when absent).
func (s *Section) Sub(key string) *Section {
	v := s.lookup(key)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		s.Errorf(key, "must be a mapping of keys to values, not a %s", kindName(v))
		return nil
	}
	return newSection(s.file, s.join(key), v)
}

// join makes the dotted path of a key of s.
func (s *Section) join(key string) string {
	if s.path == "" {
		return key
	}
	return s.path + "." + key
}

// SubList returns the mappings listed under key (one mapping counts as a
// list of one).
func (s *Section) SubList(key string) []*Section {
	v := s.lookup(key)
	if v == nil {
		return nil
	}
	return sectionList(s.file, s.join(key), v, s)
}

func sectionList(file, path string, v *yaml.Node, errs *Section) []*Section {
	switch v.Kind {
	case yaml.MappingNode:
		return []*Section{newSection(file, path, v)}
	case yaml.SequenceNode:
		out := make([]*Section, 0, len(v.Content))
		for i, item := range v.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if item.Kind != yaml.MappingNode {
				errs.errs = append(errs.errs, &Error{File: file, Line: item.Line, Key: p, Msg: "must be a mapping of keys to values, not a " + kindName(item)})
				continue
			}
			out = append(out, newSection(file, p, item))
		}
		return out
	}
	errs.errs = append(errs.errs, &Error{File: file, Line: v.Line, Key: path, Msg: "must be a mapping or a list of mappings, not a " + kindName(v)})
	return nil
}

// Decode decodes the whole section into v with YAML struct tags, for custom
// brokers that prefer a struct. Every key counts as read.
func (s *Section) Decode(v any) error {
	for k := range s.keys {
		s.used[k] = true
	}
	if s.node == nil {
		return nil
	}
	if err := s.node.Decode(v); err != nil {
		return &Error{File: s.file, Line: s.Line(), Key: s.path, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}
