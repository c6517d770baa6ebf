// Package privacy anonymizes personally identifiable information (PII) in
// events on their way to a broker, as Rasa Pro's PII management does for
// Kafka and RabbitMQ (3.6's anonymization rule lists, 3.13's privacy rules),
// but for every broker and without a model.
//
// The spool keeps every accepted event as it arrived; Wrap puts a Broker in
// front of each configured broker that rewrites the events of each Publish
// according to the broker's rule set (or passes them through untouched for
// a broker that opts out):
//
//	cfg, err := privacy.ParseConfig(ep.Section("privacy"), ep.EventBrokers)
//	brokers, err := broker.OpenAll(ctx, ep.EventBrokers, env)
//	brokers, err = privacy.Wrap(ctx, cfg, brokers, privacy.Env{...})
//
// What is found: the values of the slots a rule names (in the slot events,
// and the same value anywhere in the text, entities, parse_data and
// metadata of that conversation's events), the values of the entities a
// rule names, and what the enabled recognizers match (email, phone,
// credit_card, iban, or any registered with RegisterRecognizer). Values
// learned from slots and entities are kept per conversation in a Values
// store (bounded in count and time) so later turns are covered too.
//
// Only the top-level fields of an event that change are re-encoded; every
// other byte of Rasa's JSON stays as it was. See docs/privacy.md.
package privacy
