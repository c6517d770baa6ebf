package tracker

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

var _ Lister = (*SQLStore)(nil)

// ListConversations walks the table backwards by id from q.Before and
// keeps each conversation's last row (no row of its sender has a larger
// id): the first rows found are the conversations written to last. No
// GROUP BY over the whole table, so a page reads about as many rows as it
// shows (times the events per conversation they interleave with), found
// through the primary key and Rasa's sender_id index; no index is added
// to Rasa's table.
//
// A search first narrows the candidates in SQL (the id, or a user or bot
// row whose JSON contains the term as Rasa escapes it), then checks the
// text field of the candidates' rows in Go, batch after batch until the
// page is full: an unselective search costs one pass over the table at
// worst.
func (s *SQLStore) ListConversations(ctx context.Context, q ListQuery) ([]ConversationInfo, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	q.Limit = clampLimit(q.Limit)
	var out []ConversationInfo
	for {
		batch, err := s.listCandidates(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, c := range batch {
			ok, err := s.searchMatches(ctx, c.ID, q.Search)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, c)
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
		if len(batch) < q.Limit {
			return out, nil
		}
		q.Before = batch[len(batch)-1].Cursor
	}
}

// listCandidates returns up to q.Limit conversations before q.Before
// whose id or stored JSON matches q.Search.
func (s *SQLStore) listCandidates(ctx context.Context, q ListQuery) ([]ConversationInfo, error) {
	var args []any
	p := func(v any) string {
		args = append(args, v)
		return s.dialect.Placeholder(len(args))
	}
	t := s.table
	var b strings.Builder
	b.WriteString("SELECT e.sender_id, e.id, e.type_name, e.timestamp, (SELECT COUNT(*) FROM " + t + " c WHERE c.sender_id = e.sender_id) FROM " + t + " e WHERE ")
	if q.Before > 0 {
		b.WriteString("e.id < " + p(q.Before) + " AND ")
	}
	b.WriteString("NOT EXISTS (SELECT 1 FROM " + t + " f WHERE f.sender_id = e.sender_id AND f.id > e.id)")
	if q.Search != "" {
		plain, inJSON := searchNeedles(q.Search)
		b.WriteString(" AND (LOWER(e.sender_id) LIKE " + p(likePattern(plain)) + " ESCAPE '\\' OR EXISTS (SELECT 1 FROM " + t +
			" g WHERE g.sender_id = e.sender_id AND g.type_name IN ('user', 'bot') AND LOWER(g.data) LIKE " + p(likePattern(inJSON)) + " ESCAPE '\\'))")
	}
	b.WriteString(" ORDER BY e.id DESC LIMIT " + p(q.Limit))
	rows, err := s.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sql tracker store: list conversations: %w", err)
	}
	defer rows.Close()
	var out []ConversationInfo
	for rows.Next() {
		var (
			ci ConversationInfo
			ts sql.NullFloat64
		)
		if err := rows.Scan(&ci.ID, &ci.Cursor, &ci.LastType, &ts, &ci.Events); err != nil {
			return nil, fmt.Errorf("sql tracker store: list conversations: %w", err)
		}
		ci.LastTimestamp = ts.Float64
		out = append(out, ci)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sql tracker store: list conversations: %w", err)
	}
	return out, nil
}

// searchMatches checks a candidate of listCandidates: its id contains the
// term, or the text of one of its user or bot events does (the SQL
// filter also matched keys and other fields of the JSON).
func (s *SQLStore) searchMatches(ctx context.Context, id, search string) (bool, error) {
	if search == "" {
		return true, nil
	}
	plain, inJSON := searchNeedles(search)
	if strings.Contains(lowerASCII(id), plain) {
		return true, nil
	}
	p := s.dialect.Placeholder
	rows, err := s.db.QueryContext(ctx, "SELECT id, data FROM "+s.table+" WHERE sender_id = "+p(1)+
		" AND type_name IN ('user', 'bot') AND LOWER(data) LIKE "+p(2)+" ESCAPE '\\' ORDER BY id", id, likePattern(inJSON))
	if err != nil {
		return false, fmt.Errorf("sql tracker store: list conversations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rowID int64
			data  sql.NullString
		)
		if err := rows.Scan(&rowID, &data); err != nil {
			return false, fmt.Errorf("sql tracker store: list conversations: %w", err)
		}
		ev, err := decodeRow(id, rowID, data)
		if err != nil {
			continue // a corrupt row matches nothing; Retrieve reports it
		}
		if textContains(ev, plain) {
			return true, nil
		}
	}
	return false, rows.Err()
}

// likePattern matches values containing s, with LIKE's wildcards in s
// taken literally (ESCAPE '\').
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}
