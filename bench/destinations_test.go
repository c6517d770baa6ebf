package bench

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/config"
)

func TestOwnDestinations(t *testing.T) {
	ep, err := config.Parse("endpoints.yml", []byte(`event_broker:
  - type: kafka
    url: k:9092
    topic: rasa_core_events
  - url: rabbit
    username: u
    password: p
    queue: old
    queues: [rasa_core_events]
  - type: sql
    table: events
  - type: file
    path: rasa_event.log
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := OwnDestinations(ep.EventBrokers); err != nil {
		t.Fatal(err)
	}
	b := ep.EventBrokers
	if b[0].String("topic", "") != OwnTopic || !b[0].Bool("create_topic", false) || b[0].String("url", "") != "k:9092" {
		t.Errorf("kafka: topic %q", b[0].String("topic", ""))
	}
	if q := b[1].StringList("queues", nil); len(q) != 1 || q[0] != OwnQueue || b[1].Has("queue") || b[1].String("exchange_name", "") != OwnQueue {
		t.Errorf("rabbitmq: queues %v, queue %v", q, b[1].Has("queue"))
	}
	if b[2].String("table", "") != OwnTable || b[3].String("path", "") != OwnFilePath {
		t.Errorf("sql %q, file %q", b[2].String("table", ""), b[3].String("path", ""))
	}
	ep, _ = config.Parse("endpoints.yml", []byte("event_broker:\n  type: my.Custom\n"))
	if err := OwnDestinations(ep.EventBrokers); err == nil || !strings.Contains(err.Error(), "--into-configured") {
		t.Fatalf("custom type: %v", err)
	}
}
