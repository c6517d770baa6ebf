package brokertest

import "testing"

// The suite checks itself on the simplest correct broker.
func TestRecorderConformance(t *testing.T) {
	Run(t, Harness{
		Features: Features{GlobalOrder: true, EventIDs: true, SenderKey: true},
		Open:     func(t *testing.T) Destination { return NewRecorder().Destination() },
	})
}

// And on the simplest exactly-once broker, whose Positioned case runs.
func TestPositionedRecorderConformance(t *testing.T) {
	Run(t, Harness{
		Features: Features{GlobalOrder: true, EventIDs: true, SenderKey: true},
		Open:     func(t *testing.T) Destination { return NewPositionedRecorder().Destination() },
	})
}
