// Package consumer serves parley's REST consumer API: Nuance Mix's Kafka
// Consumer API (and Confluent REST Proxy v2's consumer paths) over the
// events parley publishes, so that analytics, CRM or QA teams read
// conversation events with curl instead of a Kafka client.
//
// A Handler serves the API over a Source: Kafka topics
// (consumer/kafkasrc) or the SQL broker's events table (consumer/sqlsrc),
// which makes the API work on the embedded default (SQLite events.db):
//
//	src, err := sqlsrc.New(ctx, sqlsrc.Options{DB: db, Dialect: sqldb.SQLite})
//	h, err := consumer.NewHandler(consumer.Options{Config: cfg, Source: src})
//	mux.Handle("/", h)
//	...
//	h.Close(ctx)
//	src.Close(ctx)
//
// A consumer instance is named by the consumer-group and consumer-name
// headers (Mix) or by /consumers/{group}/instances/{name} (Confluent). It
// subscribes to topics (the group shares their partitions among its
// members) or is assigned partitions, reads records (GET
// /consumers/records, a long poll that returns as soon as records arrive,
// or GET /consumers/records/stream, Server-Sent Events), and commits
// offsets that the group keeps across restarts. Instances idle for
// consumer_idle_timeout are closed; calls then say the instance expired.
//
// Security follows Mix: clients trade credentials for a short-lived token
// at POST /oauth2/token (package consumer/auth) whose claims name the
// topics it may read. With no clients configured the API needs no token
// and answers loopback callers only. GET /openapi.json describes every
// endpoint.
package consumer
