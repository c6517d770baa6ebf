// Command custombroker is parley with one more event broker: "webhook",
// which POSTs each batch of events as NDJSON to an HTTP endpoint. It shows
// how a custom broker replaces Rasa's "type: path.to.Class": register a
// factory under a type name, then run parley's own command line.
//
//	go run ./examples/custombroker publish < events.ndjson
//
// with an endpoints.yml such as
//
//	event_broker:
//	  type: webhook
//	  url: http://localhost:8080/events
//	  timeout: 5s
package main

import (
	"os"

	"github.com/parleyhq/parley/broker"
	_ "github.com/parleyhq/parley/broker/all" // keep the built-in brokers too
	"github.com/parleyhq/parley/cli"
)

func main() {
	broker.Register("webhook", newWebhook)
	os.Exit(cli.Main())
}
