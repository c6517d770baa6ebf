// Package spool is parley's durable, at-least-once buffer between
// accepting an event and publishing it.
//
// Once Publish returns nil for an event, the event is in an on-disk
// write-ahead log and reaches every configured broker at least once, in
// per-sender order, across broker outages and parley crashes: one delivery
// worker per broker reads the log from that broker's persisted cursor and
// retries until the broker confirms. Rasa keeps unpublished events in
// memory and loses them on restart; parley does not.
//
//	cfg, err := spool.ParseConfig(ep.Section("spool")) // defaults when absent
//	brokers, err := broker.OpenAll(ctx, ep.EventBrokers, env)
//	sp, err := spool.Open(ctx, cfg, brokers, spool.WithLogger(log), spool.WithRegisterer(reg))
//	// sp is a broker.Broker: hand it to the HTTP API as its publisher.
//	err = sp.Publish(ctx, evs...)        // durable on return; ErrFull -> 503 + Retry-After
//	err = sp.Ready()                      // for /ready
//	err = sp.Close(shutdownCtx)           // drain, persist cursors; then close the brokers
//
// The log is a directory of segment files holding checksummed records;
// appends are group-committed (concurrent calls share one write and one
// fsync), and each batch ends with a commit marker (marker.go) that says
// the batch is whole and records the last durable point: how far the
// segment had been fsynced. At start-up (scan.go) damage before that point
// is corruption, skipped and reported, and a torn tail after it, which a
// crash or power cut can leave in any order, is cut. Cursors live in
// cursors.json, replaced atomically; a missing one with events in the log
// means replay from the oldest. A segment is removed once every broker's
// persisted cursor has passed it, and the total size is bounded: a full
// spool refuses new events (ErrFull) rather than dropping accepted ones.
// Events a broker rejects permanently go to a per-broker dead-letter file.
//
// AppendIdempotent records an Idempotency-Key and its outcome in the
// marker of the events' batch, so the key is durable exactly when the
// events are; a retry gets the recorded outcome (keys.go).
//
// See docs/spool.md for the on-disk format, the guarantees and their
// limits.
package spool
