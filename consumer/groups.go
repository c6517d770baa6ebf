package consumer

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// checkGroup checks the calling client may use the consumer group it
// creates an instance in (and so read and commit its offsets): a group
// named in some client's `groups` belongs to the clients naming it; a
// client with a `groups` list is confined to it; any other group belongs
// to the first client that uses it, recorded beside the group's offsets
// by sources that can (GroupOwners), else in memory. With no clients
// (the open, loopback-only mode) every group is everyone's.
func (h *Handler) checkGroup(ctx context.Context, rc *reqCtx) error {
	if rc.owner == "" {
		return nil
	}
	group := rc.key.group
	listed := false
	for _, c := range h.cfg.Clients {
		if groupListed(c.Groups, group) {
			if c.ID == rc.owner {
				return nil
			}
			listed = true
		}
	}
	if listed {
		return forbiddenGroup(group)
	}
	for _, c := range h.cfg.Clients {
		if c.ID == rc.owner && len(c.Groups) > 0 {
			return forbiddenGroup(group)
		}
	}
	owner, err := h.claimGroup(ctx, group, rc.owner)
	if err != nil {
		return err
	}
	if owner != rc.owner {
		return forbiddenGroup(group)
	}
	return nil
}

// groupListed reports whether groups names group, exactly or by a prefix
// ending in "*".
func groupListed(groups []string, group string) bool {
	return slices.ContainsFunc(groups, func(g string) bool {
		if p, ok := strings.CutSuffix(g, "*"); ok {
			return strings.HasPrefix(group, p)
		}
		return g == group
	})
}

func (h *Handler) claimGroup(ctx context.Context, group, client string) (string, error) {
	if g, ok := h.src.(GroupOwners); ok {
		return g.ClaimGroup(ctx, group, client)
	}
	h.groupsMu.Lock()
	defer h.groupsMu.Unlock()
	if owner, ok := h.groups[group]; ok {
		return owner, nil
	}
	h.groups[group] = client
	return client, nil
}

func forbiddenGroup(group string) *Error {
	return apiErr(http.StatusForbidden, CodeForbidden, "Consumer group %q belongs to another client; use a group of your own (or list it in your client's groups in consumer_api.clients).", group)
}
