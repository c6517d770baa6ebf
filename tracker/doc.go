// Package tracker keeps Rasa conversation trackers and serves Rasa's
// conversation API.
//
// A Store keeps each conversation's events: MemoryStore, or SQLStore on
// Rasa's own SQLTrackerStore table (SQLite or PostgreSQL), so parley and
// Rasa read each other's databases. Open builds the store from the
// tracker_store section of endpoints.yml; CheckConfig validates it
// without I/O.
//
//	cfg, err := tracker.ConfigFromEndpoints(ep)
//	store, err := tracker.Open(ctx, cfg, logger)
//	h, err := tracker.NewHandler(tracker.HandlerOptions{Store: store, Publisher: spool})
//	h.Register(mux) // GET /conversations/{id}/tracker, POST and PUT .../tracker/events
//
// NewTracker derives the tracker state Rasa's API returns (slots, latest
// message, active loop, paused, ...) by applying the events as Rasa 3.6
// does, undo, rewind, restart and loop re-executions included; the tests
// check it byte for byte against Rasa's own output.
//
// Writes store and publish what Rasa's conversation code would: each event
// in Rasa's canonical form (event.Canonical), a session start on a new
// conversation, the configured model ids, the slots of an optional Rasa
// Domain. By default, unlike Rasa, an event already stored in the
// conversation is neither stored nor published again, so a client may
// retry a POST, or post its whole tracker with one more event, and the
// brokers see each event once; HandlerOptions.RasaAppend restores Rasa's
// way. An Idempotency-Key's outcome is recorded in the store's
// transaction (Change.Record). Publishing happens before the store
// commits, so a failure anywhere means a retry publishes again (at least
// once), never that an event is lost.
package tracker
