package tracker_test

import (
	"testing"

	"github.com/parleyhq/parley/tracker"
	"github.com/parleyhq/parley/tracker/trackertest"
)

func TestMemoryStoreConformance(t *testing.T) {
	trackertest.Run(t, trackertest.Harness{
		Open: func(*testing.T) tracker.Store { return tracker.NewMemoryStore() },
	})
}
