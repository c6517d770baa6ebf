package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
	filebroker "github.com/parleyhq/parley/broker/file"
	kafkabroker "github.com/parleyhq/parley/broker/kafka"
	"github.com/parleyhq/parley/broker/rabbitmq"
	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/event"
)

// Baseline returns the raw-client equivalent of an open parley broker:
// the same destination, the same durability, the library alone. The
// returned close function releases what it opened.
func Baseline(ctx context.Context, b broker.Broker, log *slog.Logger) (name string, pub PublishFunc, closeFn func(), err error) {
	if u, ok := b.(interface{ Unwrap() broker.Broker }); ok {
		b = u.Unwrap()
	}
	switch b := b.(type) {
	case *kafkabroker.Broker:
		c := b.Config()
		opts, err := c.ConnectionOptions(log)
		if err != nil {
			return "", nil, nil, err
		}
		// franz-go's defaults (idempotent, acks=all) with the broker's
		// compression and linger, so that only parley's own work differs.
		cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(c.Topic),
			kgo.ProducerBatchCompression(c.CompressionCodec()), kgo.ProducerLinger(c.Linger))...)
		if err != nil {
			return "", nil, nil, err
		}
		return "raw franz-go", RawKafka(cl, c.Topic, c.PartitionBySender), cl.Close, nil
	case *rabbitmq.Broker:
		conn, err := b.Config().Dial(ctx)
		if err != nil {
			return "", nil, nil, err
		}
		return "raw amqp091-go", RawAMQP(conn, b.Config().Exchange), func() { conn.Close() }, nil
	case *sqlbroker.Broker:
		c := b.Config()
		return "raw batched insert", RawSQL(b.DB(), c.DB.Dialect, c.Table), func() {}, nil
	case *filebroker.Broker:
		f, err := os.OpenFile(b.Path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return "", nil, nil, err
		}
		return "raw append+fsync", RawFile(f), func() { f.Close() }, nil
	}
	return "", nil, nil, fmt.Errorf("bench: no raw baseline for %T", b)
}

// RawFile appends each batch as JSON lines in one write and fsyncs.
func RawFile(f *os.File) PublishFunc {
	return func(_ context.Context, evs []event.Event) error {
		var buf []byte
		for _, ev := range evs {
			buf = append(buf, ev.RasaJSON()...)
			buf = append(buf, '\n')
		}
		if _, err := f.Write(buf); err != nil {
			return err
		}
		return f.Sync()
	}
}
