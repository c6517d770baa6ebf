package config

import (
	"bytes"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Mask replaces secrets in printed configuration.
const Mask = "******"

// IsSecretKey reports whether a key's value must not be printed.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"password", "secret", "token"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// RedactURL masks the password of a URL such as amqp://user:pw@host/.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.Scheme == "" {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	u.User = url.UserPassword(u.User.Username(), Mask)
	return strings.Replace(u.String(), url.QueryEscape(Mask), Mask, 1)
}

// Redacted returns the configuration as YAML, environment variables
// resolved and secrets masked, for `parley config check`.
func (e *Endpoints) Redacted() ([]byte, error) {
	root := redactNode(e.root.node, "")
	if len(e.EventBrokers) > 0 && e.root.keys["event_broker"] == nil {
		// event_broker came from the built-in defaults: show what is used.
		root.Content = append(root.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: "event_broker", HeadComment: "event_broker: not in the file, built-in default used"},
			redactNode(e.EventBrokers[0].node, "event_broker"))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func redactNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			break
		}
		if IsSecretKey(key) {
			c.Value, c.Tag, c.Style = Mask, "!!str", 0
		} else if strings.Contains(n.Value, "://") {
			c.Value = RedactURL(n.Value)
		}
	case yaml.MappingNode, yaml.SequenceNode:
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			k := key
			if n.Kind == yaml.MappingNode && i%2 == 1 {
				k = n.Content[i-1].Value
			}
			c.Content[i] = redactNode(child, k)
		}
	}
	return &c
}
