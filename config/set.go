package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Set sets key to value (anything YAML encodes), replacing the key's value
// or adding the key at the end, for tools that adjust a loaded
// configuration (`parley bench` points brokers at its own destinations).
func (s *Section) Set(key string, value any) {
	var n yaml.Node
	if err := n.Encode(value); err != nil {
		panic(fmt.Sprintf("config.Section.Set(%q): %v", key, err)) // the caller's value: a bug, not input
	}
	if s.node == nil || s.node.Kind != yaml.MappingNode {
		panic("config.Section.Set on a section that is not a mapping")
	}
	if old, ok := s.keys[key]; ok {
		*old = n
		return
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	v := &n
	s.node.Content = append(s.node.Content, k, v)
	s.keys[key], s.key[key] = v, k
}

// Delete removes key.
func (s *Section) Delete(key string) {
	if _, ok := s.keys[key]; !ok || s.node == nil {
		return
	}
	for i := 0; i+1 < len(s.node.Content); i += 2 {
		if s.node.Content[i].Value == key {
			s.node.Content = append(s.node.Content[:i], s.node.Content[i+2:]...)
			break
		}
	}
	delete(s.keys, key)
	delete(s.key, key)
}

// EnsureSection returns the top-level section key, adding an empty one
// when the file has none.
func (e *Endpoints) EnsureSection(key string) *Section {
	if e.root.keys[key] == nil || isNull(e.root.keys[key]) {
		e.root.Set(key, map[string]any{})
	}
	return e.root.Sub(key)
}

// YAML returns the configuration as YAML with environment variables
// resolved and nothing masked, for a child process to read (bench soak):
// write it only to a private file.
func (e *Endpoints) YAML() ([]byte, error) {
	return yaml.Marshal(e.root.node)
}
