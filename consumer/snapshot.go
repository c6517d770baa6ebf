package consumer

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// GroupStatus is a consumer group's live instances on this node.
type GroupStatus struct {
	Group     string
	Instances []InstanceStatus
}

// InstanceStatus describes one consumer instance, for status pages.
type InstanceStatus struct {
	Name string
	// Owner is the client_id that created it ("" when the API is open).
	Owner string
	// Mode is "subscribed", "assigned" or "idle" (neither yet).
	Mode       string
	Topics     []string
	AutoCommit bool
	// IdleFor is how long it has had no request in progress.
	IdleFor    time.Duration
	Partitions []PartitionStatus
	// Err is why the partitions could not be read, if they could not.
	Err string
}

// PartitionStatus is one partition an instance reads. Offsets follow
// Kafka: the next offset to read. -1 means unknown (no commit, nothing
// delivered yet).
type PartitionStatus struct {
	Topic     string
	Partition int32
	// Delivered is the position after the last record handed to the
	// client; Committed the group's committed offset.
	Delivered, Committed int64
	// Beginning and End bound the partition (End is the high watermark).
	Beginning, End int64
	// Lag is End minus Committed (End minus Beginning without a commit):
	// the records the group has yet to commit.
	Lag int64
}

// Snapshot returns the live consumer instances of this node, by group
// and name, with their partitions' offsets and lag. It asks the source
// for each instance's assignment, commits and end offsets, within ctx.
func (h *Handler) Snapshot(ctx context.Context) []GroupStatus {
	e := h.eng
	e.mu.Lock()
	ins := make([]*instance, 0, len(e.instances))
	for _, in := range e.instances {
		select {
		case <-in.ready:
			if in.c != nil {
				ins = append(ins, in)
			}
		default: // still being created
		}
	}
	e.mu.Unlock()
	now := time.Now()
	var groups []GroupStatus
	for _, in := range ins {
		st := in.status(ctx, now)
		i := slices.IndexFunc(groups, func(g GroupStatus) bool { return g.Group == in.key.group })
		if i < 0 {
			groups = append(groups, GroupStatus{Group: in.key.group})
			i = len(groups) - 1
		}
		groups[i].Instances = append(groups[i].Instances, st)
	}
	slices.SortFunc(groups, func(a, b GroupStatus) int { return cmp.Compare(a.Group, b.Group) })
	for _, g := range groups {
		slices.SortFunc(g.Instances, func(a, b InstanceStatus) int { return cmp.Compare(a.Name, b.Name) })
	}
	return groups
}

func (in *instance) status(ctx context.Context, now time.Time) InstanceStatus {
	st := InstanceStatus{Name: in.key.name, Owner: in.owner, AutoCommit: in.settings.autoCommit, IdleFor: in.idleSince(now), Topics: in.topicsRead()}
	in.mu.Lock()
	switch in.mode {
	case modeSubscribed:
		st.Mode = "subscribed"
	case modeAssigned:
		st.Mode = "assigned"
	default:
		st.Mode = "idle"
	}
	delivered := make(map[TopicPartition]int64, len(in.delivered))
	for tp, off := range in.delivered {
		delivered[tp] = off
	}
	in.mu.Unlock()
	tps, err := in.assignment(ctx)
	if err != nil {
		st.Err = err.Error()
		return st
	}
	committed, err := in.c.Committed(ctx, tps)
	if err != nil {
		st.Err = err.Error()
	}
	for _, tp := range tps {
		ps := PartitionStatus{Topic: tp.Topic, Partition: tp.Partition, Delivered: -1, Committed: -1, Lag: -1}
		if off, ok := delivered[tp]; ok {
			ps.Delivered = off
		}
		for _, c := range committed {
			if c.TP() == tp {
				ps.Committed = c.Offset
			}
		}
		if offs, err := in.e.src.Offsets(ctx, tp.Topic, tp.Partition); err == nil {
			ps.Beginning, ps.End = offs.Beginning, offs.End
			ps.Lag = max(offs.End-max(ps.Committed, offs.Beginning), 0)
		} else if st.Err == "" {
			st.Err = err.Error()
		}
		st.Partitions = append(st.Partitions, ps)
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStatus) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return st
}

// CheckClient reports whether id and secret are a configured client's
// credentials (consumer_api.clients), for logins other than the token
// endpoint's, such as the web UI's. It is as slow for unknown ids as for
// known ones.
func (h *Handler) CheckClient(id, secret string) bool {
	if !h.auth.Enabled() {
		return false
	}
	_, err := h.auth.Issue(id, secret, "")
	return err == nil
}
