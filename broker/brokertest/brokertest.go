// Package brokertest is the conformance suite every parley broker passes.
//
// A backend's test supplies a Harness that opens its broker on a fresh,
// empty destination and reads back what arrived there:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, brokertest.Harness{
//			Features: brokertest.Features{GlobalOrder: true},
//			Open: func(t *testing.T) brokertest.Destination { ... },
//		})
//	}
package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
)

// Features says what a backend guarantees, so that the suite checks exactly
// that and no more.
type Features struct {
	// GlobalOrder: events from one publisher come back in publish order
	// (a table, a file, one queue). Otherwise only the order per sender is
	// checked (Kafka partitioned by sender).
	GlobalOrder bool
	// EventIDs: Message.ID carries the event's ID (Kafka header, AMQP
	// message_id).
	EventIDs bool
	// SenderKey: Message.Key is the sender ID (Kafka partition_by_sender).
	SenderKey bool
	// Timeout bounds each read; default 30s.
	Timeout time.Duration
}

// Message is one message read back from a destination.
type Message struct {
	Body    []byte
	Key     []byte
	ID      string
	Headers map[string]string
}

// Destination is an open broker and a way to see what it delivered.
type Destination struct {
	Broker broker.Broker
	// Read returns every message at the destination, waiting until at
	// least n have arrived or ctx ends (then it returns what it has).
	Read func(ctx context.Context, n int) ([]Message, error)
}

// Harness connects the suite to one backend.
type Harness struct {
	Features Features
	// Open opens a broker on a new, empty destination (a new table, file,
	// topic or queue), closed by the suite or by t.Cleanup.
	Open func(t *testing.T) Destination
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.Features.Timeout == 0 {
		h.Features.Timeout = 30 * time.Second
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"RasaBytes", testRasaBytes},
		{"OrderPerSender", testOrderPerSender},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"CloseFlushesInFlight", testCloseFlushes},
		{"PublishAfterClose", testPublishAfterClose},
		{"ContextCanceled", testContextCanceled},
		{"EmptyAndLarge", testEmptyAndLarge},
		{"Positioned", testPositioned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}
