package rabbitmq

import (
	"context"
	"testing"
)

// Helpers for the external tests (package rabbitmq_test).

// UniqueName makes an exchange or queue name no other test run uses.
func UniqueName(t testing.TB, suffix string) string { return uniqueName(t, suffix) }

// Cleanup deletes the exchange and queues when the test ends.
func Cleanup(t testing.TB, url, exchange string, queues ...string) {
	cleanup(t, url, exchange, queues...)
}

// ReadBodies consumes queue until it holds no more messages and at least n
// arrived, and returns their bodies.
func ReadBodies(ctx context.Context, url, queue string, n int) ([][]byte, error) {
	ds, err := (&reader{url: url, queue: queue}).read(ctx, n)
	out := make([][]byte, len(ds))
	for i, d := range ds {
		out[i] = d.Body
	}
	return out, err
}
