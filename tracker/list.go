package tracker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/parleyhq/parley/event"
)

// Lister is implemented by stores that can page through their
// conversations by latest activity without loading them all (the web UI's
// conversation list). MemoryStore and SQLStore implement it; List calls it.
type Lister interface {
	// ListConversations returns up to q.Limit conversations, the one
	// written to last first, starting after q.Before.
	ListConversations(ctx context.Context, q ListQuery) ([]ConversationInfo, error)
}

// ListQuery selects a page of conversations.
type ListQuery struct {
	// Search, if set, keeps the conversations whose id contains it, or
	// with a user or bot event whose text contains it; case-insensitive
	// for ASCII letters.
	Search string
	// Before is the Cursor of the last conversation of the previous page
	// (0: start with the newest). Paging is by key, not offset: a page
	// costs the same at conversation 100,000 as at the first.
	Before int64
	// Limit is the page size (default 50, at most 500).
	Limit int
}

// ConversationInfo summarizes a conversation for a list.
type ConversationInfo struct {
	ID string
	// Cursor orders conversations by their last write (the store's row id
	// or insertion counter); ListQuery.Before takes it.
	Cursor int64
	// Events is the number of events stored.
	Events int64
	// LastType and LastTimestamp describe the last event stored
	// (LastTimestamp 0 when it has none).
	LastType      string
	LastTimestamp float64
}

// ErrListUnsupported is returned by List for a store without Lister.
var ErrListUnsupported = errors.New("tracker store cannot list conversations")

// Page size bounds of ListQuery.Limit.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// List pages through s's conversations, newest activity first.
func List(ctx context.Context, s Store, q ListQuery) ([]ConversationInfo, error) {
	l, ok := s.(Lister)
	if !ok {
		return nil, fmt.Errorf("%w (%T)", ErrListUnsupported, s)
	}
	q.Limit = clampLimit(q.Limit)
	return l.ListConversations(ctx, q)
}

func clampLimit(n int) int {
	if n <= 0 {
		return DefaultListLimit
	}
	return min(n, MaxListLimit)
}

// searchNeedles returns what a search matches in Go: the lowered term,
// and the lowered term as it appears inside stored JSON (Rasa's
// ensure_ascii escapes, without the quotes), which the SQL store matches
// against its data column.
func searchNeedles(term string) (plain, inJSON string) {
	enc := event.StringValue(term).AppendJSON(nil, event.FormatRasa)
	return lowerASCII(term), lowerASCII(string(enc[1 : len(enc)-1]))
}

// lowerASCII lowers ASCII letters only, as SQLite's LOWER does, so that
// every store matches the same way.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// textContains reports whether ev is a user or bot event whose text
// contains the lowered needle.
func textContains(ev event.Event, needle string) bool {
	if typ := ev.Type(); typ != "user" && typ != "bot" {
		return false
	}
	text, ok := ev.Get("text")
	return ok && text.Kind() == event.String && strings.Contains(lowerASCII(text.Str()), needle)
}

var _ Lister = (*MemoryStore)(nil)

// ListConversations sorts the conversations by their last event's
// insertion counter; the memory store holds them all anyway.
func (s *MemoryStore) ListConversations(ctx context.Context, q ListQuery) ([]ConversationInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.Limit = clampLimit(q.Limit)
	plain, _ := searchNeedles(q.Search)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []ConversationInfo
	for id, evs := range s.convs {
		last := evs[len(evs)-1]
		if q.Before > 0 && int64(last.seq) >= q.Before {
			continue
		}
		if q.Search != "" && !strings.Contains(lowerASCII(id), plain) && !slices.ContainsFunc(evs, func(m memEvent) bool {
			return textContains(m.ev, plain)
		}) {
			continue
		}
		ts, _ := last.ev.Timestamp()
		out = append(out, ConversationInfo{ID: id, Cursor: int64(last.seq), Events: int64(len(evs)), LastType: last.ev.Type(), LastTimestamp: ts})
	}
	slices.SortFunc(out, func(a, b ConversationInfo) int { return cmp.Compare(b.Cursor, a.Cursor) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}
