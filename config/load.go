package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultFile is the file parley reads from the working directory, as Rasa
// reads endpoints.yml.
const DefaultFile = "endpoints.yml"

// EmbeddedName names the built-in configuration in messages.
const EmbeddedName = "(built-in defaults)"

//go:embed default_endpoints.yml
var defaultEndpoints []byte

// DefaultYAML returns the built-in configuration used when there is no
// endpoints.yml: the SQL event broker on SQLite events.db and the SQL
// tracker store on SQLite rasa.db, both in the working directory.
func DefaultYAML() []byte { return append([]byte(nil), defaultEndpoints...) }

// Error is a configuration problem at a place in a file.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted path, e.g. "event_broker.port"
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is several configuration errors, one per line when printed.
type Errors []error

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap lets errors.As find each *Error.
func (e Errors) Unwrap() []error { return e }

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return Errors(append([]error(nil), errs...))
}

// ErrNoFile is returned by Find when no endpoints.yml exists.
var ErrNoFile = errors.New("no endpoints.yml")

// Endpoints is a loaded endpoints.yml.
type Endpoints struct {
	// File is the path read, or EmbeddedName.
	File string
	// Default reports that File is the built-in configuration.
	Default bool
	// EventBrokers are the event_broker sections: one, or several when
	// event_broker is a list (a parley extension to fan out).
	EventBrokers []*Section
	root         *Section
}

// Section returns a top-level section such as "tracker_store", or nil when
// it is absent.
func (e *Endpoints) Section(key string) *Section { return e.root.Sub(key) }

// Keys returns the top-level keys in file order.
func (e *Endpoints) Keys() []string { return e.root.Keys() }

// Err returns errors recorded on the top level (such as a malformed
// section) since loading.
func (e *Endpoints) Err() error { return e.root.Err() }

// Load reads path if given, else ./endpoints.yml if it exists, else the
// built-in defaults.
func Load(path string) (*Endpoints, error) {
	if path == "" {
		if _, err := os.Stat(DefaultFile); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Parse(EmbeddedName, defaultEndpoints)
			}
			return nil, fmt.Errorf("config: %w", err)
		}
		path = DefaultFile
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse loads endpoints.yml content; file names the source in errors.
// ${VAR} references in values are replaced by environment variables, and an
// unset variable is an error. When event_broker is absent the built-in
// default broker is used, so parley always has somewhere to publish.
func Parse(file string, data []byte) (*Endpoints, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, err)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if isNull(root) {
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Msg: "the file must be a mapping of sections (event_broker:, tracker_store:, ...), not a " + kindName(root)}
	}
	var errs []error
	resolve(file, "", root, 0, &errs)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	ep := &Endpoints{File: file, Default: file == EmbeddedName, root: newSection(file, "", root)}
	ep.root.path = ""
	if v := ep.root.lookup("event_broker"); v != nil {
		ep.EventBrokers = sectionList(file, "event_broker", v, ep.root)
		if err := ep.root.Err(); err != nil {
			return nil, err
		}
	} else if !ep.Default {
		def, err := Parse(EmbeddedName, defaultEndpoints)
		if err != nil {
			return nil, err
		}
		ep.EventBrokers = def.EventBrokers
	}
	return ep, nil
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

func yamlError(file string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		text := "YAML syntax error: " + m[2]
		if strings.HasPrefix(m[2], "did not find expected") {
			// The YAML parser reports where the enclosing block starts, not
			// the offending line below it.
			text += " (in the block starting on this line: check the indentation and quoting of the lines below)"
		}
		return &Error{File: file, Line: line, Msg: text}
	}
	return &Error{File: file, Msg: "YAML syntax error: " + msg}
}

var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// resolve expands aliases, merge keys and ${VAR} references in place and
// rejects duplicate keys, which YAML forbids and which would silently drop
// a value.
func resolve(file, path string, n *yaml.Node, depth int, errs *[]error) {
	r := &resolver{file: file, errs: errs}
	r.resolve(path, n, depth)
}

// Bounds of what aliases may expand to: a 400-byte file of nested aliases
// ("billion laughs") would otherwise expand to billions of values.
const (
	maxResolvedValues = 100_000
	maxResolvedBytes  = 10 << 20
)

type resolver struct {
	file      string
	errs      *[]error
	values    int    // nodes visited, aliases expanded
	bytes     int    // scalar bytes visited
	over      bool   // a bound was crossed (reported once)
	aliasLine int    // line of the outermost alias being expanded
	aliasPath string // and its key
}

func (r *resolver) fail(line int, path, msg string) {
	*r.errs = append(*r.errs, &Error{File: r.file, Line: line, Key: path, Msg: msg})
}

// count charges n to the budget and reports whether resolving may go on.
func (r *resolver) count(n *yaml.Node, path string) bool {
	if r.over {
		return false
	}
	r.values++
	r.bytes += len(n.Value)
	if r.values > maxResolvedValues || r.bytes > maxResolvedBytes {
		r.over = true
		line := r.aliasLine
		if line == 0 {
			line = n.Line
		} else {
			path = r.aliasPath
		}
		r.fail(line, path, fmt.Sprintf("aliases expand to more than %d values or %d MiB (nested aliases, a \"billion laughs\"?): write the values out", maxResolvedValues, maxResolvedBytes>>20))
		return false
	}
	return true
}

func (r *resolver) resolve(path string, n *yaml.Node, depth int) {
	if depth > 100 {
		r.fail(n.Line, path, "nesting too deep")
		return
	}
	if !r.count(n, path) {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias != nil {
			if r.aliasLine == 0 {
				r.aliasLine, r.aliasPath = n.Line, path
				defer func() { r.aliasLine, r.aliasPath = 0, "" }()
			}
			*n = *n.Alias
			r.resolve(path, n, depth+1)
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "${") {
			expandEnv(r.file, path, n, r.errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			r.resolve(fmt.Sprintf("%s[%d]", path, i), c, depth+1)
		}
	case yaml.MappingNode:
		r.merge(path, n, depth)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if first, dup := seen[k.Value]; dup {
				r.fail(k.Line, p, fmt.Sprintf("key repeated (first on line %d)", first))
			}
			seen[k.Value] = k.Line
			r.resolve(p, n.Content[i+1], depth+1)
		}
	}
}

// isMergeKey reports YAML's merge key, a plain <<.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0
}

// merge replaces the merge keys (<<: *base, or <<: [*a, *b]) of mapping n
// by the merged mappings' keys, as YAML 1.1 defines them: n's own keys
// win, then the first mapping listed.
func (r *resolver) merge(path string, n *yaml.Node, depth int) {
	var own, merged []*yaml.Node
	found := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			own = append(own, k, v)
			continue
		}
		found = true
		r.resolve(path, v, depth+1)
		if r.over {
			return
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, m := range sources {
			if m.Kind != yaml.MappingNode {
				r.fail(k.Line, path, "<< (merge key) must merge a mapping or a list of mappings, got a "+kindName(m))
				continue
			}
			merged = append(merged, m.Content...)
		}
	}
	if !found {
		return
	}
	have := map[string]bool{}
	for i := 0; i < len(own); i += 2 {
		have[own[i].Value] = true
	}
	for i := 0; i+1 < len(merged); i += 2 {
		if k := merged[i]; !have[k.Value] {
			have[k.Value] = true
			own = append(own, k, merged[i+1])
		}
	}
	n.Content = own
}

// expandEnv replaces ${VAR} in a scalar, as Rasa does for endpoints.yml,
// and keeps the result a string: "port: ${PORT}" reads as "5672".
func expandEnv(file, path string, n *yaml.Node, errs *[]error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		name := ref[2 : len(ref)-1]
		val, ok := os.LookupEnv(name)
		if !ok || name == "" {
			missing = append(missing, ref)
			return ref
		}
		return val
	})
	if len(missing) > 0 {
		*errs = append(*errs, &Error{File: file, Line: n.Line, Key: path, Msg: "environment variable " + strings.Join(missing, ", ") + " is not set"})
		return
	}
	n.Value, n.Tag, n.Style = out, "!!str", 0
}
