// Package rabbitmq is the RabbitMQ event broker, endpoints.yml type pika
// (Rasa's name, and the type of an event_broker without one) or rabbitmq:
//
//	event_broker:
//	  type: pika
//	  url: localhost            # or amqp(s)://user:password@host:port/vhost
//	  username: username
//	  password: password
//	  queues: [rasa_core_events]
//	  exchange_name: rasa-exchange
//
// It declares the topology Rasa declares (a non-durable fanout exchange,
// durable queues bound with routing key ""), so that it works against a
// RabbitMQ Rasa already set up, and sends each event as Rasa does:
// the Rasa JSON bytes, delivery_mode 2, app_id $RASA_ENVIRONMENT when
// set, the event's headers; plus message_id = the event ID.
//
// Unlike Rasa, whose publishes are fire-and-forget and whose events
// published while disconnected are dropped (RasaHQ/rasa#6703, #5245),
// Publish returns only once RabbitMQ has confirmed every message (publisher
// confirms, mandatory routing). When the connection drops the broker
// reconnects with backoff, redeclares the topology and republishes, in
// order, every message RabbitMQ had not confirmed; Publish waits for that
// (up to its context's deadline) instead of reporting success. See
// docs/rabbitmq.md.
package rabbitmq
