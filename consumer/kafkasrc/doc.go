// Package kafkasrc serves Kafka topics to the REST consumer API with
// franz-go. Each REST consumer instance is a franz-go client of its own:
// subscribing makes it a member of its consumer group (Kafka assigns and
// rebalances partitions, commits carry the member's generation),
// assigning makes it read the given partitions directly, starting from
// the group's committed offsets. Offsets are committed in Kafka, so they
// are shared with any other Kafka consumer of the group.
//
// The connection (seeds, TLS, SASL) comes from the Kafka event broker's
// configuration as []kgo.Opt:
//
//	src, err := kafkasrc.New(ctx, kafkasrc.Options{ClientOpts: opts, Topic: "rasa_core_events"})
package kafkasrc
