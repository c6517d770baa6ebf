package event

import "github.com/google/uuid"

// NewID returns a new event ID: a UUIDv7, unique and ordered by creation
// time, so IDs also sort in acceptance order.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// Only if the system's random source fails; v4 has the same problem,
		// so there is nothing better to fall back on.
		panic("event: cannot generate an ID: " + err.Error())
	}
	return id.String()
}
