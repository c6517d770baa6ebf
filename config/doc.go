// Package config loads Rasa's endpoints.yml.
//
// parley reads the sections Rasa reads (event_broker, tracker_store) with
// Rasa's semantics, ${VAR} environment substitution included, and adds a
// few of its own: event_broker may be a list to publish to several brokers,
// and parley-only sections configure the spool and the consumer API. Every
// error names the file, line and key:
//
//	endpoints.yml:7: event_broker.port: "abc" is not a number
//
// Decoders read a Section through typed accessors and check Err once:
//
//	ep, err := config.Load("")          // ./endpoints.yml or built-in defaults
//	sec := ep.EventBrokers[0]
//	port := sec.Int("port", 5672)
//	if err := sec.Err(); err != nil { ... }
package config
