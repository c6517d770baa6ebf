package ui

import (
	"context"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/spool"
	"github.com/parleyhq/parley/tracker"
)

// Conversations is the tracker store as the UI reads it.
type Conversations interface {
	// List pages through conversations, newest activity first.
	List(ctx context.Context, q tracker.ListQuery) ([]tracker.ConversationInfo, error)
	// Retrieve returns a conversation's events in stored order.
	Retrieve(ctx context.Context, id string) ([]event.Event, error)
}

// Delivery is the spool as the UI reads it (*spool.Spool).
type Delivery interface {
	Status() spool.Status
}

// Consumers is the consumer API as the UI reads it (*consumer.Handler).
type Consumers interface {
	Snapshot(ctx context.Context) []consumer.GroupStatus
}

// TrackerConversations reads conversations from a tracker store; List
// fails with tracker.ErrListUnsupported for stores that cannot page.
func TrackerConversations(s tracker.Store) Conversations { return trackerConversations{s} }

type trackerConversations struct{ s tracker.Store }

func (t trackerConversations) List(ctx context.Context, q tracker.ListQuery) ([]tracker.ConversationInfo, error) {
	return tracker.List(ctx, t.s, q)
}

func (t trackerConversations) Retrieve(ctx context.Context, id string) ([]event.Event, error) {
	return t.s.Retrieve(ctx, id)
}
