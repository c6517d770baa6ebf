// Package broker defines parley's event broker contract and its registry.
//
// A broker is anything events can be published to durably:
//
//	type Broker interface {
//		Publish(ctx context.Context, evs ...event.Event) error
//		Close(ctx context.Context) error
//	}
//
// Each endpoints.yml event_broker type is a Factory registered under its
// name; the built-in ones (kafka, pika/rabbitmq, sql, file) register
// themselves when package broker/all is imported. Custom brokers register
// from the user's own main package, in place of Rasa's "type: module.Class":
//
//	broker.Register("webhook", newWebhook)
//	os.Exit(cli.Main())
//
// (see examples/custombroker). Every broker passes the conformance suite in
// package brokertest.
package broker
