package consumer

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// stream serves GET /consumers/records/stream: the instance's records as
// Server-Sent Events, one event per record:
//
//	id: <partition>:<offset>
//	event: record
//	data: <the record JSON of GET /consumers/records>
//
// With ?data=value the data line is the record's value alone (the event's
// JSON): what most event-stream clients want, with nothing to unwrap.
// A client that reconnects with Last-Event-ID (EventSource does it by
// itself) continues right after that event, on every partition: the
// instance remembers the order it sent records in, and rewinds the
// partitions whose later records may have been lost with the connection.
// Comments (": heartbeat") keep idle connections open through proxies.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := rc.checkReading(); err != nil {
		return err
	}
	in := rc.in
	in.mu.Lock()
	m := in.mode
	if in.journal == nil {
		in.journal = newJournal()
	}
	in.mu.Unlock()
	if m == modeNone {
		return illegalState("Consumer is not subscribed to any topics or assigned any partitions.")
	}
	valueOnly, err := valueOnlyParam(r.URL.Query())
	if err != nil {
		return err
	}
	lastID := r.Header.Get("Last-Event-ID")
	lastPartition, lastOffset, ok := ParseEventID(lastID)
	if lastID != "" && !ok {
		return invalid("Last-Event-ID %q is not <partition>:<offset>.", lastID)
	}
	rcon := http.NewResponseController(w)
	ctx, turn, err := in.takeStream(r.Context(), rcon)
	if err != nil {
		return err
	}
	defer in.releaseStream(turn)
	if lastID != "" {
		err := h.resume(ctx, in, lastPartition, lastOffset)
		if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
			return errStreamReplaced
		}
		if err != nil {
			return err
		}
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer
	w.WriteHeader(http.StatusOK)
	// retry: how long EventSource waits before reconnecting.
	if _, err := w.Write([]byte("retry: 1000\n: connected\n\n")); err != nil {
		return err
	}
	if err := rcon.Flush(); err != nil {
		return err
	}

	var expiry time.Time // the token's
	if rc.claims != nil {
		expiry = rc.claims.ExpiresAt()
	}
	buf := make([]byte, 0, 64<<10)
	lastWrite := time.Now()
	opts := readOptions{wait: h.cfg.Heartbeat, maxRecords: h.cfg.MaxRecords, maxBytes: h.cfg.MaxBytes}
	for {
		if !expiry.IsZero() && !time.Now().Before(expiry) {
			return writeErrorEvent(w, rcon, CodeUnauthorized, "The access token has expired; reconnect with a new one and Last-Event-ID to continue.")
		}
		// Wait no longer than until the next heartbeat is due, or the
		// token expires.
		opts.wait = max(h.cfg.Heartbeat-time.Since(lastWrite), 0)
		if !expiry.IsZero() {
			opts.wait = min(opts.wait, time.Until(expiry))
		}
		recs, err := in.read(ctx, opts)
		switch {
		case r.Context().Err() != nil:
			return nil // the client left
		case ctx.Err() != nil:
			return writeErrorEvent(w, rcon, CodeStreamReplaced, errStreamReplaced.Message)
		case errors.Is(err, ErrConsumerNotFound) && h.eng.isClosed():
			return writeErrorEvent(w, rcon, CodeUnavailable, "The server is shutting down; reconnect with Last-Event-ID to continue.")
		case errors.Is(err, ErrConsumerNotFound):
			return writeErrorEvent(w, rcon, CodeConsumerNotFound, "Consumer instance not found (deleted or expired).")
		case err != nil:
			e := asAPIError(err)
			return writeErrorEvent(w, rcon, e.Code, e.Message)
		}
		in.touch()
		if resets := in.takeResets(); len(resets) > 0 {
			// Told before the records read from the new position.
			buf = buf[:0]
			for _, ev := range resets {
				buf = append(buf, ": offset reset "...)
				buf = append(buf, ev.describe()...)
				buf = append(buf, "\n\n"...)
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
			// At once: a client waiting for new records learns now where
			// it reads from.
			if err := rcon.Flush(); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			if time.Since(lastWrite) >= h.cfg.Heartbeat {
				if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
					return err
				}
				if err := rcon.Flush(); err != nil {
					return err
				}
				lastWrite = time.Now()
			}
			continue
		}
		// Every record available now is written, then flushed at once: no
		// record waits in a buffer for a later one.
		buf = buf[:0]
		for i := range recs {
			rec := &recs[i]
			buf = append(buf, "id: "...)
			buf = strconv.AppendInt(buf, int64(rec.Partition), 10)
			buf = append(buf, ':')
			buf = strconv.AppendInt(buf, rec.Offset, 10)
			buf = append(buf, "\nevent: record\ndata: "...)
			if valueOnly {
				buf = appendValue(buf, rec.Value, in.settings.binary, true)
			} else {
				buf = appendRecord(buf, rec, in.settings.binary, true)
			}
			buf = append(buf, "\n\n"...)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := rcon.Flush(); err != nil {
			return err
		}
		lastWrite = time.Now()
	}
}

var errStreamReplaced = apiErr(http.StatusConflict, CodeStreamReplaced, "A newer stream of this consumer instance took over.")

// streamTurn is the hold of one SSE stream on its instance.
type streamTurn struct {
	cancel context.CancelFunc
	rcon   *http.ResponseController
	done   chan struct{} // closed when the stream's handler has ended
}

// takeStream makes the calling stream the instance's only one. A client
// that reconnects usually does so before the server has noticed the old
// connection is gone; were both handlers to read on, the old one would
// take records and write them to a dead socket. So the old stream is
// stopped, and waited for, before the new one resumes: everything it
// sent after the client's Last-Event-ID is then in the journal, which
// resume rewinds. A write blocked on a connection cut without a reset is
// failed after a second. The returned context ends when a newer stream
// takes over; the caller must call releaseStream with the turn.
func (in *instance) takeStream(ctx context.Context, rcon *http.ResponseController) (context.Context, *streamTurn, error) {
	sctx, cancel := context.WithCancel(ctx)
	me := &streamTurn{cancel: cancel, rcon: rcon, done: make(chan struct{})}
	in.mu.Lock()
	prev := in.stream
	in.stream = me
	in.mu.Unlock()
	if prev != nil {
		prev.cancel()
		// A live old stream ends at once with an error event; one whose
		// write is blocked is cut after a grace period.
		grace := time.NewTimer(time.Second)
		defer grace.Stop()
		for waiting := true; waiting; {
			select {
			case <-prev.done:
				waiting = false
			case <-grace.C:
				_ = prev.rcon.SetWriteDeadline(time.Now())
			case <-ctx.Done():
				in.releaseStream(me)
				return nil, nil, ctx.Err()
			}
		}
	}
	return sctx, me, nil
}

// releaseStream ends the hold taken by takeStream.
func (in *instance) releaseStream(me *streamTurn) {
	me.cancel()
	in.mu.Lock()
	if in.stream == me {
		in.stream = nil
	}
	in.mu.Unlock()
	close(me.done)
}

// writeErrorEvent ends a stream with an error event holding an Error.
func writeErrorEvent(w http.ResponseWriter, rcon *http.ResponseController, code int, msg string) error {
	data := `{"error_code":` + strconv.Itoa(code) + `,"message":` + string(appendString(nil, msg)) + `}`
	return writeEvent(w, rcon, "error", data)
}

func writeEvent(w http.ResponseWriter, rcon *http.ResponseController, event, data string) error {
	if _, err := w.Write([]byte("event: " + event + "\ndata: " + data + "\n\n")); err != nil {
		return err
	}
	return rcon.Flush()
}

// ParseEventID reads a stream event's id, <partition>:<offset>.
func ParseEventID(id string) (partition int32, offset int64, ok bool) {
	ps, os, ok := strings.Cut(strings.TrimSpace(id), ":")
	if !ok {
		return 0, 0, false
	}
	p, err1 := strconv.ParseInt(ps, 10, 32)
	off, err2 := strconv.ParseInt(os, 10, 64)
	if err1 != nil || err2 != nil || p < 0 || off < 0 {
		return 0, 0, false
	}
	return int32(p), off, true
}

// resume positions in to continue after event partition:offset. When the
// instance sent that event, every partition sent on after it is rewound
// to its first record after the event. Otherwise (a new instance) the
// event's partition continues after it, if the instance reads a single
// topic, and the others from where the instance stands.
func (h *Handler) resume(ctx context.Context, in *instance, partition int32, offset int64) error {
	if err := in.take(ctx, true); err != nil {
		return err
	}
	defer in.done()
	in.mu.Lock()
	seeks, found := in.journal.rewind(partition, offset)
	in.mu.Unlock()
	if !found {
		topics := in.topicsRead()
		if len(topics) != 1 {
			return nil
		}
		seeks = []TopicPartitionOffset{{Topic: topics[0], Partition: partition, Offset: offset + 1}}
	}
	if len(seeks) == 0 {
		return nil
	}
	for _, s := range seeks {
		err := in.seekLocked(ctx, []TopicPartitionOffset{s})
		if errors.Is(err, ErrNotAssigned) {
			// The partition went to another member of the group, which
			// reads on from the group's committed offset.
			h.log.Info("SSE resume: partition no longer assigned to this consumer", "group", in.key.group, "name", in.key.name, "topic", s.Topic, "partition", s.Partition)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}
