package config

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Mask replaces secrets in printed configuration.
const Mask = "******"

// IsSecretKey reports whether a key's value must not be printed. The rule
// fails closed: a key is secret when one of its words (split at _, - and .)
// names a secret (password, secret, token, key, credential...) or contains
// one (sslpassword, apikey), unless its last word says the value is about
// the secret rather than the secret (token_ttl, ssl_keyfile is one word
// and a path). So signing_key, private_key, sasl_password and
// client_secret_hash are masked, token_ttl and sasl_mechanism are not.
func IsSecretKey(key string) bool {
	words := strings.FieldsFunc(strings.ToLower(key), func(r rune) bool { return r == '_' || r == '-' || r == '.' || r == ' ' })
	if len(words) == 0 {
		return false
	}
	if notSecretSuffix[words[len(words)-1]] {
		return false
	}
	for _, w := range words {
		if secretWords[w] {
			return true
		}
		for _, s := range secretParts {
			if strings.Contains(w, s) {
				return true
			}
		}
	}
	return false
}

// secretWords are words that name a secret on their own.
var secretWords = map[string]bool{
	"key": true, "pass": true, "pwd": true, "passwd": true, "pin": true,
	"auth": true, "credential": true, "credentials": true, "cookie": true,
	"signature": true, "hash": true, "salt": true, "private": true,
}

// secretParts name a secret inside a longer word (sslpassword, apikey).
var secretParts = []string{"password", "secret", "token", "apikey", "passphrase", "credential", "privatekey"}

// notSecretSuffix are last words that make a key describe a secret
// without holding it.
var notSecretSuffix = map[string]bool{
	"ttl": true, "lifetime": true, "expiry": true, "expires": true, "timeout": true,
	"file": true, "path": true, "url": true, "endpoint": true, "type": true,
	"mechanism": true, "name": true, "id": true, "username": true, "user": true,
	"length": true, "size": true, "header": true, "enabled": true,
}

// dsnPassword finds passwords in key=value connection strings
// ("host=db password=x").
var dsnPassword = regexp.MustCompile(`(?i)\b(password|sslpassword|passwd|pwd)=('[^']*'|\S+)`)

// isKeyMaterial reports values that hold key material whatever their key
// is called: PEM blocks.
func isKeyMaterial(v string) bool { return strings.Contains(v, "-----BEGIN ") }

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
		if IsSecretKey(key) || isKeyMaterial(n.Value) {
			c.Value, c.Tag, c.Style = Mask, "!!str", 0
		} else if strings.Contains(n.Value, "://") {
			c.Value = RedactURL(n.Value)
		} else if dsnPassword.MatchString(n.Value) {
			c.Value = dsnPassword.ReplaceAllString(n.Value, "${1}="+Mask)
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
