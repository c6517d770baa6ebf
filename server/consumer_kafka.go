package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kafkabroker "github.com/parleyhq/parley/broker/kafka"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/kafkasrc"
)

// openKafkaSource reads the Kafka broker's cluster with the broker's own
// connection settings (seeds, TLS, SASL).
func openKafkaSource(ctx context.Context, sec *config.Section, cfg consumer.Config, log *slog.Logger) (*consumerSource, error) {
	kc, err := kafkabroker.ParseConfig(sec)
	if err != nil {
		return nil, err
	}
	opts, err := kc.ConnectionOptions(log)
	if err != nil {
		return nil, fmt.Errorf("consumer API: %w", err)
	}
	// A topic created after the start is served within a second rather
	// than franz-go's 5s of cached "unknown topic" metadata (issue 21).
	opts = append(opts, kgo.MetadataMinAge(time.Second))
	topic := cfg.Topic
	if topic == "" {
		topic = kc.Topic
	}
	s, err := kafkasrc.New(ctx, kafkasrc.Options{ClientOpts: opts, Topic: topic, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("consumer API: %w", err)
	}
	return &consumerSource{Source: s, cfg: cfg, close: s.Close}, nil
}
