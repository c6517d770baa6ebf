// Package event is parley's model of Rasa tracker events.
//
// An event is a JSON object such as
//
//	{"event": "user", "timestamp": 1700000004.62, "text": "hello", ...}
//
// Parse keeps every key in order, every unknown type and field, integers of
// any size and strings exactly, so that an event published by parley is
// byte-for-byte what Rasa would have published: RasaJSON encodes the way
// Python's json.dumps does (", " and ": " separators, \uXXXX escapes, floats
// in repr form such as 1.0 and 1e-05).
//
//	ev, err := event.Parse(line)
//	if err == nil {
//		err = ev.ValidateForPublish()
//	}
//	wire := ev.RasaJSON() // {"sender_id": "default", "event": "user", ...}
package event
