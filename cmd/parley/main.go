// Command parley is the event-streaming gateway for conversational AI: it
// publishes Rasa tracker events to the brokers in endpoints.yml. See the
// README, or run `parley --help`.
package main

import (
	"os"

	_ "github.com/parleyhq/parley/broker/all"
	"github.com/parleyhq/parley/cli"
)

func main() { os.Exit(cli.Main()) }
