// Package sqlsrc serves the SQL event broker's table to the REST consumer
// API: Rasa's events(id, sender_id, data) is one topic (rasa_core_events
// unless configured) of one partition, 0, whose offsets are the row ids.
// A record's key is the sender_id, its value the data column (the event's
// Rasa JSON), its timestamp the event's timestamp field.
//
// Committed offsets live in the same database, in
// parley_consumer_offsets(group_id, topic, partition, committed_offset,
// metadata, updated_at), so they survive restarts. Subscribing members of
// a group are coordinated in process: one of them reads the partition,
// the others wait to take over when it leaves.
//
// Reads wait for rows without holding a connection: the server calls
// Notify after the SQL broker commits, and a watcher polls for rows
// written by other processes (Rasa itself, another parley) at
// PollInterval while reads wait.
//
// On PostgreSQL ids come from a sequence and transactions may commit out
// of id order, so a read stops at a missing id below visible ones until
// PostgreSQL shows that no transaction that could still write it is
// running (see member.settle): a row committed late is not skipped.
package sqlsrc
