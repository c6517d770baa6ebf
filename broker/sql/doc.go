// Package sql is the SQL event broker (endpoints.yml type: sql), writing
// Rasa's events table on SQLite (the embedded default, events.db) or
// PostgreSQL:
//
//	events(id integer primary key, sender_id varchar(255), data text)
//
// where data holds the event's Rasa bytes. It writes into a table Rasa
// created as well as creating it itself. Unlike Rasa, which commits once
// per event, it commits concurrent publishes together in one transaction
// (group commit), and Publish returns once that transaction is durable.
package sql
