package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/parleyhq/parley/config"
)

// A Factory decodes and validates one event_broker section of
// endpoints.yml and returns an Opener. It must not do I/O, so that
// `parley config check` can run it safely: connect in the Opener.
//
// Read keys with the Section's accessors, call sec.WarnUnused(type) to
// warn about misspelt keys, and return sec.Err().
type Factory func(sec *config.Section) (Opener, error)

// An Opener connects a configured broker.
type Opener func(ctx context.Context, env Env) (Broker, error)

// The registry is parley's one piece of global state: brokers register
// themselves from init functions, as database/sql drivers do, and custom
// brokers register from the user's own main package.
var registry = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes a broker type available to endpoints.yml under name
// (matched case-insensitively). It replaces Rasa's "type: module.Class"
// for custom brokers. It panics if name is empty or already registered,
// which is a programming error.
func Register(name string, f Factory) {
	key := strings.ToLower(strings.TrimSpace(name))
	if key == "" || f == nil {
		panic("broker.Register: empty name or nil factory")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[key]; dup {
		panic("broker.Register: type " + key + " registered twice")
	}
	registry.m[key] = f
}

// Types returns the registered type names, sorted.
func Types() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.m))
	for k := range registry.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DefaultType is the type of a section without "type": Rasa treats such a
// section as pika (RabbitMQ).
const DefaultType = "pika"

// Configure validates a section with its registered factory. The error
// names the file and line; an unknown type lists the registered ones.
func Configure(sec *config.Section) (Opener, error) {
	typ := sec.Type()
	if typ == "" {
		typ = DefaultType
	}
	registry.RLock()
	f, ok := registry.m[typ]
	registry.RUnlock()
	if !ok {
		hint := ""
		if strings.Contains(typ, ".") {
			hint = "; Rasa's module.Class custom brokers are registered in Go with broker.Register (see examples/custombroker)"
		}
		if sec.Type() == "" {
			sec.Errorf("", "%v: no type given, and Rasa's default %q is not registered (registered: %s)", ErrUnknownType, DefaultType, strings.Join(Types(), ", "))
		} else {
			sec.Errorf("type", "%v %q (registered: %s)%s", ErrUnknownType, sec.String("type", ""), strings.Join(Types(), ", "), hint)
		}
		return nil, unknownTypeError{sec.Err()}
	}
	sec.String("name", "")    // parley's own key, read by Names; not the factory's
	sec.String("privacy", "") // parley's own key, read by the privacy package
	open, err := f(sec)
	if err == nil {
		err = sec.Err()
	}
	if err != nil {
		if sec.Type() == "" {
			// "username is required" puzzles whoever did not mean RabbitMQ.
			err = errors.Join(err, &config.Error{File: sec.File(), Line: sec.Line(), Key: sec.Path(),
				Msg: fmt.Sprintf("no type given, so Rasa's default %s (RabbitMQ) applies; set type (%s) for another broker", DefaultType, strings.Join(Types(), ", "))})
		}
		return nil, err
	}
	return open, nil
}

// unknownTypeError keeps the positioned config error for printing and
// lets errors.Is(err, ErrUnknownType) hold.
type unknownTypeError struct{ err error }

func (e unknownTypeError) Error() string   { return e.err.Error() }
func (e unknownTypeError) Unwrap() []error { return []error{e.err, ErrUnknownType} }
