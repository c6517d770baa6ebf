package bench

import (
	"fmt"

	"github.com/parleyhq/parley/config"
)

// The benchmark's own destinations: a run writes there unless told to use
// the configured ones, so it never fills a user's real table, topic or
// queue with generated events.
const (
	OwnTopic    = "parley_bench_events"     // Kafka (created if missing)
	OwnQueue    = "parley_bench_events"     // RabbitMQ queue and exchange
	OwnTable    = "parley_bench_events"     // SQL table
	OwnFilePath = "parley_bench_events.log" // file broker
)

// OwnDestinations points every event broker section at the benchmark's own
// destination, keeping its connection settings. It fails for a broker type
// whose destination it does not know.
func OwnDestinations(secs []*config.Section) error {
	for _, s := range secs {
		switch s.Type() {
		case "kafka":
			s.Set("topic", OwnTopic)
			s.Set("create_topic", true)
		case "", "pika", "rabbitmq":
			s.Delete("queue")
			s.Set("queues", []string{OwnQueue})
			s.Set("exchange_name", OwnQueue)
		case "sql":
			s.Set("table", OwnTable)
		case "file":
			s.Set("path", OwnFilePath)
		default:
			return fmt.Errorf("%s:%d: bench does not know where a %q broker writes; pass --into-configured to publish into its configured destination", s.File(), s.Line(), s.Type())
		}
	}
	return nil
}
