package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/parleyhq/parley/broker"
	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/sqlsrc"
	"github.com/parleyhq/parley/internal/sqldb"
)

// consumerSource is the consumer API's source with what closing it takes.
type consumerSource struct {
	consumer.Source
	cfg   consumer.Config
	close func(context.Context) error
}

// openConsumerSource opens the source the consumer API reads: the SQL
// broker's table or the Kafka broker's topic, following the first event
// broker unless consumer_api.source says otherwise. It returns nil when
// there is nothing the API can read (RabbitMQ or file brokers only).
func openConsumerSource(ctx context.Context, ep *config.Endpoints, cfg consumer.Config, brokers []broker.Named, log *slog.Logger) (*consumerSource, error) {
	if len(ep.EventBrokers) == 0 {
		return nil, nil
	}
	kind := cfg.SourceFor(typeOf(ep.EventBrokers[0]))
	if kind == "" {
		log.Info("consumer API off: it reads Kafka topics or the SQL events table, and no event broker is either", "broker", brokers[0].Name)
		return nil, nil
	}
	i := firstOfType(ep.EventBrokers, kind)
	if i < 0 {
		return nil, fmt.Errorf("consumer_api.source is %s but no event_broker has type %s", kind, kind)
	}
	switch kind {
	case "sql":
		bc, err := sqlbroker.ParseConfig(ep.EventBrokers[i])
		if err != nil {
			return nil, err
		}
		// A handle of its own, so SQLite reads don't queue behind the
		// broker's writer connection.
		db, err := sqldb.Open(ctx, bc.DB)
		if err != nil {
			return nil, fmt.Errorf("consumer API: %w", err)
		}
		table := cfg.Table
		if table == "" {
			table = bc.Table
		}
		s, err := sqlsrc.New(ctx, sqlsrc.Options{DB: db, Dialect: bc.DB.Dialect, Table: table, Topic: cfg.Topic, PollInterval: cfg.PollInterval, Logger: log})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("consumer API: %w", err)
		}
		brokers[i].Broker = consumer.NotifyOnPublish(brokers[i].Broker, s)
		return &consumerSource{Source: s, cfg: cfg, close: func(ctx context.Context) error {
			return errors.Join(s.Close(ctx), db.Close())
		}}, nil
	case "kafka":
		return openKafkaSource(ctx, ep.EventBrokers[i], cfg, log)
	}
	return nil, fmt.Errorf("consumer_api.source %q is not supported (kafka or sql)", kind)
}

func typeOf(sec *config.Section) string {
	if t := sec.Type(); t != "" {
		return t
	}
	return broker.DefaultType
}

func firstOfType(secs []*config.Section, typ string) int {
	for i, s := range secs {
		if typeOf(s) == typ {
			return i
		}
	}
	return -1
}
