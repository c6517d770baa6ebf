package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/progress"
	"github.com/parleyhq/parley/tracker"
)

// ProcessIDHeader is the header every exported event carries, with one
// value per run: Rasa's RASA_EXPORT_PROCESS_ID_HEADER_NAME.
const ProcessIDHeader = "rasa-export-process-id"

// Options configure an export. Zero values take the documented defaults.
type Options struct {
	// Store is read. Required.
	Store tracker.Store
	// Broker receives the events, usually a broker.Fanout. Required. Run
	// does not close it.
	Broker broker.Broker
	// MinTimestamp, if set, skips events before it (inclusive bound:
	// --minimum-timestamp).
	MinTimestamp *float64
	// MaxTimestamp, if set, skips events at or after it (exclusive bound:
	// --maximum-timestamp).
	MaxTimestamp *float64
	// ConversationIDs, if set, limits the export to these conversations
	// (--conversation-ids); ids not in the store are reported in
	// Result.Missing.
	ConversationIDs []string
	// OffsetSeconds is added to every exported timestamp
	// (--offset-timestamps-by-seconds). Filters use the original ones.
	OffsetSeconds int64
	// BatchSize is the number of events per Publish (default 500).
	BatchSize int
	// Backoff spaces the retries of a failing batch (default 100ms
	// doubling to 10s).
	Backoff broker.Backoff
	// RetryFor is how long a failing batch is retried before the export
	// stops with a PublishError (default 1 minute).
	RetryFor time.Duration
	// ProcessID is the rasa-export-process-id header value (default a new
	// UUID in hex, as Rasa's uuid4().hex).
	ProcessID string
	// Progress, if set, counts the published events.
	Progress *progress.Bar
	// Logger receives retry warnings (default slog.Default()).
	Logger *slog.Logger
}

// Result says what an export did.
type Result struct {
	// Conversations is the number of conversations exported from.
	Conversations int
	// Counted is the number of events the store reported before the
	// export started; Selected differs when the store changed meanwhile.
	Counted int64
	// Selected is the number of events read from the store.
	Selected int64
	// Published is the number of events the broker confirmed.
	Published int64
	// Missing are requested conversation ids the store does not have.
	Missing []string
	// ProcessID is the rasa-export-process-id of the run.
	ProcessID string
}

// Errors callers branch on; the messages are Rasa's where it has one.
var (
	ErrBadRange        = errors.New("the maximum timestamp is smaller than the minimum timestamp")
	ErrNoConversations = errors.New("could not find any conversations in the tracker store")
	ErrNoOverlap       = errors.New("could not find an overlap between the requested conversation IDs and those found in the tracker store")
	// ErrIncomplete is returned when the counts do not add up: fewer
	// events confirmed than read. Never success with events missing
	// (RasaHQ/rasa#8167).
	ErrIncomplete = errors.New("not every selected event was published")
)

// PublishError is returned when publishing stopped before the end.
// Nothing from ResumeFrom on is known to be published, and everything
// before it is, since events go out in timestamp order across
// conversations: an export with MinTimestamp = ResumeFrom (and the same
// other options) completes the set, republishing at most the events that
// share that timestamp.
type PublishError struct {
	// ResumeFrom is the timestamp of the first event not confirmed, as
	// Python prints it (exact when parsed back), or "" when that event has
	// no timestamp and the export must start over.
	ResumeFrom string
	// Published is the number of events confirmed before the failure.
	Published int64
	Err       error
}

func (e *PublishError) Error() string {
	at := "an event without a timestamp"
	if e.ResumeFrom != "" {
		at = "the event with timestamp " + e.ResumeFrom
	}
	return fmt.Sprintf("publishing stopped at %s after %d events: %v", at, e.Published, e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

// Run publishes the selected events, in timestamp order across
// conversations, each as `rasa export` writes it: sender_id last, the
// rasa-export-process-id header set, and a new event ID. It returns when
// every selected event is confirmed by the broker, or with a
// *PublishError saying where to resume.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Store == nil || o.Broker == nil {
		return Result{}, errors.New("export: Store and Broker are required")
	}
	if o.MinTimestamp != nil && o.MaxTimestamp != nil && *o.MaxTimestamp < *o.MinTimestamp {
		return Result{}, fmt.Errorf("%w: maximum timestamp '%s' is smaller than minimum timestamp '%s'", ErrBadRange,
			formatFloat(*o.MaxTimestamp), formatFloat(*o.MinTimestamp))
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.RetryFor <= 0 {
		o.RetryFor = time.Minute
	}
	if o.ProcessID == "" {
		id := uuid.New()
		o.ProcessID = fmt.Sprintf("%x", id[:])
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	res := Result{ProcessID: o.ProcessID}

	keys, err := o.Store.Keys(ctx)
	if err != nil {
		return res, fmt.Errorf("export: list conversations: %w", err)
	}
	if len(keys) == 0 {
		return res, ErrNoConversations
	}
	q := tracker.Query{MinTimestamp: o.MinTimestamp, MaxTimestamp: o.MaxTimestamp}
	res.Conversations = len(keys)
	if o.ConversationIDs != nil {
		have := make(map[string]bool, len(keys))
		for _, k := range keys {
			have[k] = true
		}
		seen := map[string]bool{}
		q.SenderIDs = []string{}
		for _, id := range o.ConversationIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			if have[id] {
				q.SenderIDs = append(q.SenderIDs, id)
			} else {
				res.Missing = append(res.Missing, id)
			}
		}
		if len(q.SenderIDs) == 0 {
			return res, ErrNoOverlap
		}
		res.Conversations = len(q.SenderIDs)
	}
	if res.Counted, err = o.Store.Count(ctx, q); err != nil {
		return res, fmt.Errorf("export: count events: %w", err)
	}
	o.Progress.SetTotal(res.Counted)

	headers := map[string]string{ProcessIDHeader: o.ProcessID}
	batch := make([]event.Event, 0, o.BatchSize)
	// The original timestamps (before the offset) of the batch's first
	// event, of the last event confirmed, and of the last event read.
	var first, last, lastOriginal event.Value
	// resumeFrom is where a new export must start to cover every event not
	// confirmed yet: the batch in hand, or else just after the last
	// confirmed event (inclusive, so that one goes again), or the start.
	resumeFrom := func() string {
		ts := last
		if len(batch) > 0 {
			ts = first
		}
		if ts.Kind() != event.Number {
			return ""
		}
		return ts.NumberText()
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, o.RetryFor)
		err := broker.PublishRetry(pctx, o.Broker, batch, o.Backoff, func(attempt int, err error, wait time.Duration) {
			o.Logger.Warn("export: publish failed, retrying", "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
		})
		cancel()
		if err != nil {
			return &PublishError{ResumeFrom: resumeFrom(), Published: res.Published, Err: err}
		}
		last = lastOriginal // flushes follow the batch's last event
		res.Published += int64(len(batch))
		o.Progress.Add(int64(len(batch)))
		batch = batch[:0]
		return nil
	}
	err = o.Store.Scan(ctx, q, func(ev event.Event) error {
		res.Selected++
		if len(batch) == 0 {
			first, _ = ev.Get("timestamp")
		}
		lastOriginal, _ = ev.Get("timestamp")
		batch = append(batch, exported(ev, o.OffsetSeconds, headers))
		if len(batch) == o.BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		var pe *PublishError
		if errors.As(err, &pe) {
			return res, pe
		}
		// Reading failed (or ctx ended) mid-scan: what was confirmed is a
		// timestamp-ordered prefix, so the export can resume as well.
		return res, &PublishError{ResumeFrom: resumeFrom(), Published: res.Published, Err: fmt.Errorf("read events: %w", err)}
	}
	if res.Published != res.Selected {
		return res, fmt.Errorf("%w: %d read, %d confirmed", ErrIncomplete, res.Selected, res.Published)
	}
	return res, nil
}

// exported is ev as `rasa export` publishes it: the row loaded by its
// Rasa event class and written back (current_state's as_dict), whoever
// wrote it, sender_id last, timestamps offset. A row Rasa has no class for
// (which would stop `rasa export`) goes out as stored.
func exported(ev event.Event, offset int64, headers map[string]string) event.Event {
	if c, err := event.Canonical(ev, nowSeconds); err == nil {
		ev = c
	}
	ev = ev.Exported()
	if offset != 0 {
		if ts, ok := ev.Get("timestamp"); ok && ts.Kind() == event.Number {
			ev = ev.With("timestamp", addSeconds(ts, offset))
		}
	}
	ev.ID = event.NewID()
	ev.Headers = headers
	return ev
}

func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// addSeconds adds whole seconds to a timestamp as Python does: an int
// stays an int, a float stays a float.
func addSeconds(ts event.Value, offset int64) event.Value {
	if ts.IsInteger() {
		if i, err := strconv.ParseInt(ts.NumberText(), 10, 64); err == nil {
			if s := i + offset; (offset > 0) == (s > i) {
				return event.IntValue(s)
			}
		}
	}
	f, _ := ts.Float()
	return event.FloatValue(f + float64(offset))
}

// formatFloat prints a float as Python's repr would, for messages and the
// resume command.
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return event.FloatValue(f).NumberText()
}
