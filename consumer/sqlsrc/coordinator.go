package sqlsrc

import (
	"context"
	"slices"
	"sync"
)

// coordinator is the in-process group coordinator of subscribing members.
// The table is one partition, so, as Kafka would, it gives partition 0 to
// one member of each group (the longest-standing) and none to the others;
// when that member leaves (deleted, expired or unsubscribed) the next one
// takes the partition over from the group's committed offset.
//
// Groups span one parley process: two processes reading the same group
// from the same database would each have an owner.
type coordinator struct {
	mu     sync.Mutex
	groups map[string]*group
}

type group struct {
	members []*member // in join order
	owner   *member
}

func newCoordinator() *coordinator { return &coordinator{groups: map[string]*group{}} }

// join adds m to its group, giving it the partition if no one holds it.
func (c *coordinator) join(m *member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[m.opts.Group]
	if g == nil {
		g = &group{}
		c.groups[m.opts.Group] = g
	}
	if slices.Contains(g.members, m) {
		return
	}
	g.members = append(g.members, m)
	if g.owner == nil {
		g.owner = m
		m.setOwned(true)
	}
}

// leave removes m from its group. If m held the partition, its revoke
// callback runs first (while it still holds it, so that it can commit),
// then the next member gets it.
func (c *coordinator) leave(ctx context.Context, m *member) {
	c.mu.Lock()
	g := c.groups[m.opts.Group]
	owner := g != nil && g.owner == m
	c.mu.Unlock()
	if g == nil {
		return
	}
	if owner {
		m.revoke(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g.members = slices.DeleteFunc(g.members, func(x *member) bool { return x == m })
	if g.owner == m {
		m.setOwned(false)
		g.owner = nil
		if len(g.members) > 0 {
			g.owner = g.members[0]
			g.owner.setOwned(true)
		}
	}
	if len(g.members) == 0 {
		delete(c.groups, m.opts.Group)
	}
}
