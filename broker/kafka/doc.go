// Package kafka is the Kafka event broker (endpoints.yml type: kafka), a
// drop-in for Rasa 3.6's KafkaEventBroker built on franz-go:
//
//	event_broker:
//	  type: kafka
//	  url: localhost:9092
//	  topic: rasa_core_events
//	  partition_by_sender: true
//
// Each event becomes one record whose value is the event's exact Rasa bytes
// (json.dumps of {"sender_id": ..., ...}), keyed by sender_id when
// partition_by_sender is set, with Rasa's RASA_ENVIRONMENT header plus
// parley-event-id. Keyed records go to the partition librdkafka, and so
// Rasa, would choose (CRC-32 of the key), so a conversation stays where
// Rasa put it.
//
// Unlike Rasa, which logs and drops an event when its retries run out or
// when the first connection fails, Publish returns only when every replica
// in sync has the events (idempotent producer, acks=all), and otherwise an
// error the caller retries on. docs/kafka.md lists every key.
package kafka
