// Package ingest turns request bodies and NDJSON streams into validated
// events ready to publish, with errors that name the line or index at
// fault, and streams NDJSON input to a broker in batches (parley publish).
package ingest
