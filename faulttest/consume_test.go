package faulttest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/internal/sqldb"
)

// drainDeadline bounds how long the consumers wait for parley to deliver
// its backlog after the load ends.
const drainDeadline = 5 * time.Minute

// countKafka reads topic from the beginning until every accepted event has
// been seen or the deadline passes.
func countKafka(t *testing.T, seeds, topic string, l *load) *tally {
	t.Helper()
	// read_committed, as consumers of exactly-once parley must read: the
	// records of aborted transactions are not events.
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ta := newTally()
	ctx, cancel := context.WithTimeout(context.Background(), drainDeadline)
	defer cancel()
	want := int(l.accepted.Load())
	for ta.distinct() < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { ta.add(t, l.runID, r.Value) })
	}
	return ta
}

func createTopic(t *testing.T, seeds, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
}

// countAMQP consumes queue until every accepted event has been seen and
// the queue is empty, or the deadline passes.
func countAMQP(t *testing.T, url, queue string, l *load) *tally {
	t.Helper()
	ta := newTally()
	deadline := time.Now().Add(drainDeadline)
	want := int(l.accepted.Load())
	for ta.distinct() < want && time.Now().Before(deadline) {
		conn, err := amqp.Dial(url)
		if err != nil {
			time.Sleep(time.Second) // RabbitMQ may still be coming back
			continue
		}
		ch, err := conn.Channel()
		if err != nil {
			conn.Close()
			continue
		}
		for ta.distinct() < want && time.Now().Before(deadline) {
			msg, ok, err := ch.Get(queue, true)
			if err != nil {
				break
			}
			if !ok {
				time.Sleep(100 * time.Millisecond) // queue momentarily empty: parley still delivering
				continue
			}
			ta.add(t, l.runID, msg.Body)
		}
		conn.Close()
	}
	return ta
}

// countSQL reads the events table until every accepted event is there or
// the deadline passes.
func countSQL(t *testing.T, dsn, table string, l *load) *tally {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldb.Options{Dialect: sqldb.Postgres, Host: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(drainDeadline)
	want := int(l.accepted.Load())
	var ta *tally
	for {
		ta = newTally()
		if err := scanTable(t, db, table, l.runID, ta); err != nil && time.Now().After(deadline) {
			t.Fatal(err)
		}
		if ta.distinct() >= want || time.Now().After(deadline) {
			return ta
		}
		time.Sleep(500 * time.Millisecond) // parley still delivering
	}
}

func scanTable(t *testing.T, db *sql.DB, table, run string, ta *tally) error {
	rows, err := db.Query("SELECT data FROM " + table + " ORDER BY id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return err
		}
		ta.add(t, run, []byte(data))
	}
	return rows.Err()
}
