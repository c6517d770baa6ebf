package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
	kafkabroker "github.com/parleyhq/parley/broker/kafka"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/sqldb"
)

// The raw baselines publish the same bytes with the client library alone
// and the same durability as parley's broker (acks=all, publisher
// confirms, committed transactions): the limit parley is measured against.

// RawKafka produces each batch with a plain franz-go client (acks=all,
// idempotent, the library's defaults) and waits for every ack. Records
// carry the headers parley's broker sends (Rasa's RASA_ENVIRONMENT, unset
// here, and the event id), so both put the same bytes on the wire.
func RawKafka(cl *kgo.Client, topic string, keyBySender bool) PublishFunc {
	env := []byte(kafkabroker.RasaEnvironmentNotSet)
	return func(ctx context.Context, evs []event.Event) error {
		var wg sync.WaitGroup
		var first error
		var mu sync.Mutex
		wg.Add(len(evs))
		for _, ev := range evs {
			r := &kgo.Record{Topic: topic, Value: ev.RasaJSON(), Headers: []kgo.RecordHeader{
				{Key: kafkabroker.HeaderRasaEnvironment, Value: env},
				{Key: broker.EventIDHeader, Value: []byte(ev.ID)},
			}}
			if keyBySender {
				r.Key = []byte(ev.SenderID)
			}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
				wg.Done()
			})
		}
		wg.Wait()
		return first
	}
}

// RawAMQP publishes each batch on its own confirm-mode channel of conn to
// exchange, pipelined, and waits for every confirmation.
func RawAMQP(conn *amqp.Connection, exchange string) PublishFunc {
	var pool sync.Pool // one channel per concurrent publisher
	return func(ctx context.Context, evs []event.Event) error {
		ch, _ := pool.Get().(*amqp.Channel)
		if ch == nil || ch.IsClosed() {
			var err error
			if ch, err = conn.Channel(); err != nil {
				return err
			}
			if err := ch.Confirm(false); err != nil {
				return err
			}
		}
		confirms := make([]*amqp.DeferredConfirmation, 0, len(evs))
		for _, ev := range evs {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "", false, false, amqp.Publishing{
				Body: ev.RasaJSON(), DeliveryMode: amqp.Persistent, MessageId: ev.ID,
				Headers: amqp.Table{broker.EventIDHeader: ev.ID}, // as parley's broker
			})
			if err != nil {
				return err
			}
			confirms = append(confirms, dc)
		}
		for _, dc := range confirms {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("raw amqp: message nacked")
			}
		}
		pool.Put(ch)
		return nil
	}
}

// RawSQL inserts each batch in one transaction with multi-row INSERTs of
// up to 500 rows, through database/sql and the same driver parley uses.
func RawSQL(db *sql.DB, d sqldb.Dialect, table string) PublishFunc {
	return func(ctx context.Context, evs []event.Event) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		for i := 0; i < len(evs); i += 500 {
			chunk := evs[i:min(i+500, len(evs))]
			var q strings.Builder
			args := make([]any, 0, 2*len(chunk))
			q.WriteString("INSERT INTO " + table + " (sender_id, data) VALUES ")
			for j, ev := range chunk {
				if j > 0 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%s,%s)", d.Placeholder(2*j+1), d.Placeholder(2*j+2))
				args = append(args, ev.SenderID, string(ev.RasaJSON()))
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
}

// RasaPatternSQL commits one event per transaction, as Rasa's
// SQLEventBroker does: the pattern parley's group commit replaces.
func RasaPatternSQL(db *sql.DB, d sqldb.Dialect, table string) PublishFunc {
	q := fmt.Sprintf("INSERT INTO %s (sender_id, data) VALUES (%s,%s)", table, d.Placeholder(1), d.Placeholder(2))
	return func(ctx context.Context, evs []event.Event) error {
		for _, ev := range evs {
			if _, err := db.ExecContext(ctx, q, ev.SenderID, string(ev.RasaJSON())); err != nil {
				return err
			}
		}
		return nil
	}
}
