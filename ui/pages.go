package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/spool"
	"github.com/parleyhq/parley/tracker"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// maxSearch bounds the search box.
const maxSearch = 200

type conversationsData struct {
	Search   string
	Rows     []convRow
	Next     string // the next page's before= cursor, "" on the last
	Paged    bool   // not the first page
	Err      string
	NoStore  bool
	Unlisted bool // the store cannot list
}

type convRow struct {
	ID, LastType, Time, Full string
	Events                   int64
}

func (h *Handler) conversations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := conversationsData{Search: q.Get("q")}
	if len([]rune(d.Search)) > maxSearch {
		d.Search = string([]rune(d.Search)[:maxSearch])
	}
	if h.o.Conversations == nil {
		d.NoStore = true
		h.render(w, r, "conversations", "Conversations", d)
		return
	}
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	d.Paged = before > 0
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	list, err := h.o.Conversations.List(ctx, tracker.ListQuery{Search: d.Search, Before: before, Limit: tracker.DefaultListLimit})
	switch {
	case errors.Is(err, tracker.ErrListUnsupported):
		d.Unlisted = true
	case err != nil:
		d.Err = errText(err)
	}
	for _, c := range list {
		row := convRow{ID: c.ID, LastType: c.LastType, Events: c.Events}
		if c.LastTimestamp != 0 {
			row.Time, row.Full = formatTS(c.LastTimestamp)
			row.Time = row.Full[:19]
		}
		d.Rows = append(d.Rows, row)
	}
	if len(list) == tracker.DefaultListLimit {
		d.Next = strconv.FormatInt(list[len(list)-1].Cursor, 10)
	}
	h.render(w, r, "conversations", "Conversations", d)
}

type conversationData struct {
	ID     string
	Items  []item
	Count  int
	Slots  []slotValue
	Err    string
	Stream string // the SSE URL
}

type slotValue struct{ Name, Value string }

func (h *Handler) conversation(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	d := conversationData{ID: id}
	if h.o.Conversations == nil || id == "" {
		http.Redirect(w, r, "/ui/conversations", http.StatusSeeOther)
		return
	}
	evs, err := h.o.Conversations.Retrieve(r.Context(), id)
	if err != nil {
		d.Err = errText(err)
	}
	d.Items, d.Count = transcript(evs, 0), len(evs)
	d.Slots = slotsOf(d.Items)
	d.Stream = "/ui/conversation/stream?id=" + url.QueryEscape(id) + "&after=" + strconv.Itoa(len(evs))
	h.render(w, r, "conversation", "Conversation "+id, d)
}

// slotsOf returns the last value of each slot set in items, by name.
func slotsOf(items []item) []slotValue {
	var out []slotValue
	for _, it := range items {
		if it.Type != "slot" {
			continue
		}
		name, val := strings.TrimPrefix(it.Label, "slot "), strings.TrimPrefix(it.Detail, "= ")
		if i := slices.IndexFunc(out, func(s slotValue) bool { return s.Name == name }); i >= 0 {
			out[i].Value = val
		} else {
			out = append(out, slotValue{name, val})
		}
	}
	slices.SortFunc(out, func(a, b slotValue) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// sse starts a Server-Sent Events response.
func sse(w http.ResponseWriter) (send func(event, data string) error, ok bool) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, false
	}
	return func(event, data string) error {
		var b strings.Builder
		if event != "" {
			b.WriteString("event: " + event + "\n")
		}
		for _, line := range strings.Split(data, "\n") {
			b.WriteString("data: " + strings.TrimRight(line, "\r") + "\n")
		}
		b.WriteString("\n")
		if _, err := w.Write([]byte(b.String())); err != nil {
			return err
		}
		return rc.Flush()
	}, true
}

// conversationStream sends the events added to a conversation after the
// first ?after= as transcript fragments: at once for writes through this
// node (the Live tap), every PollInterval for others. A conversation that
// shrank (replaced) gets a "reset" event and the page reloads.
func (h *Handler) conversationStream(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	after, err := strconv.Atoi(r.URL.Query().Get("after"))
	if h.o.Conversations == nil || id == "" || err != nil || after < 0 {
		http.Error(w, "400 id and after are required", http.StatusBadRequest)
		return
	}
	var wake <-chan struct{}
	var seen uint64
	if h.o.Live != nil {
		ch, stop := h.o.Live.Watch()
		defer stop()
		wake, seen = ch, h.o.Live.Last()
	}
	send, ok := sse(w)
	if !ok {
		return
	}
	poll := time.NewTicker(h.o.PollInterval)
	defer poll.Stop()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	// A write through this node is published before its tracker store
	// commit: re-read shortly after the tap fires, too.
	var retry <-chan time.Time
	check := func() error {
		evs, err := h.o.Conversations.Retrieve(r.Context(), id)
		if err != nil {
			return err
		}
		switch {
		case len(evs) < after:
			return send("reset", "")
		case len(evs) > after:
			frag, err := h.fragment("conversation", "items", transcript(evs[after:], after))
			if err != nil {
				return err
			}
			after = len(evs)
			return send("append", frag)
		}
		return nil
	}
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-heartbeat.C:
			_, err = w.Write([]byte(": keep-alive\n\n"))
			if err == nil {
				err = http.NewResponseController(w).Flush()
			}
		case <-wake:
			mine := false
			for _, le := range h.o.Live.Since(seen) {
				seen = le.Seq
				mine = mine || le.Sender == id
			}
			if mine {
				err = check()
				retry = time.After(200 * time.Millisecond)
			}
		case <-retry:
			retry = nil
			err = check()
		case <-poll.C:
			err = check()
		}
		if err != nil {
			h.log.Debug("conversation stream ended", "err", err)
			return
		}
	}
}

type liveData struct {
	Type, Sender string
	Rows         []liveRow
	Stream       string
	Off          bool
	Types        []string
}

type liveRow struct {
	Seq                  uint64
	Time, Source, Sender string
	Type, Summary, JSON  string
	Href                 string
}

// liveFilter keeps events of a type and a sender ("" matches any).
type liveFilter struct{ typ, sender string }

func (f liveFilter) match(le LiveEvent) bool {
	return (f.typ == "" || le.Type == f.typ) && (f.sender == "" || le.Sender == f.sender)
}

func rowOf(le LiveEvent) liveRow {
	row := liveRow{Seq: le.Seq, Time: le.At.UTC().Format("15:04:05.000"), Source: le.Source, Sender: le.Sender, Type: le.Type,
		Href: "/ui/conversation?id=" + url.QueryEscape(le.Sender)}
	if le.Large {
		row.Summary = fmt.Sprintf("(over %d KiB, not kept)", maxLiveEventBytes>>10)
		return row
	}
	row.JSON = string(le.JSON())
	{
		it := itemOf(0, le.Event)
		switch {
		case it.Kind != "marker":
			row.Summary = it.Text
			if it.Intent != "" {
				row.Summary += "  [" + it.Intent + " " + it.Confidence + "]"
			}
		default:
			row.Summary = strings.TrimSpace(it.Label + " " + it.Detail)
		}
	}
	return row
}

var eventTypes = []string{"user", "bot", "action", "slot", "session_started", "active_loop", "followup", "reminder",
	"cancel_reminder", "restart", "rewind", "undo", "pause", "resume", "reset_slots", "export", "entities",
	"user_featurization", "action_execution_rejected", "loop_interrupted", "agent", "stack", "wrong_utterance", "wrong_action"}

func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := liveFilter{typ: q.Get("type"), sender: q.Get("sender")}
	d := liveData{Type: f.typ, Sender: f.sender, Off: h.o.Live == nil, Types: eventTypes}
	var last uint64
	if h.o.Live != nil {
		evs := h.o.Live.Since(0)
		for i := len(evs) - 1; i >= 0 && len(d.Rows) < 200; i-- {
			if f.match(evs[i]) {
				d.Rows = append(d.Rows, rowOf(evs[i]))
			}
		}
		if len(evs) > 0 {
			last = evs[len(evs)-1].Seq
		}
	}
	v := url.Values{"after": {strconv.FormatUint(last, 10)}}
	if f.typ != "" {
		v.Set("type", f.typ)
	}
	if f.sender != "" {
		v.Set("sender", f.sender)
	}
	d.Stream = "/ui/live/stream?" + v.Encode()
	h.render(w, r, "live", "Live events", d)
}

// liveStream sends accepted events after ?after= matching the filter, as
// table rows, newest last.
func (h *Handler) liveStream(w http.ResponseWriter, r *http.Request) {
	if h.o.Live == nil {
		http.Error(w, "404 no live tail", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	f := liveFilter{typ: q.Get("type"), sender: q.Get("sender")}
	seen, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			seen = n
		}
	}
	wake, stop := h.o.Live.Watch()
	defer stop()
	send, ok := sse(w)
	if !ok {
		return
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		var rows []liveRow
		evs := h.o.Live.Since(seen)
		for _, le := range evs {
			seen = le.Seq
			if f.match(le) {
				rows = append(rows, rowOf(le))
			}
		}
		if len(rows) > 0 {
			frag, err := h.fragment("live", "rows", rows)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\n", seen); err != nil {
				return
			}
			if send("rows", frag) != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			_ = http.NewResponseController(w).Flush()
		case <-wake:
		}
	}
}

type deliveryData struct {
	Off     bool
	Spool   spool.Status
	Size    string // Bytes of MaxSize, for people
	Used    string
	Brokers []brokerRow
	Chart   chart
	Refresh int // milliseconds
}

type brokerRow struct {
	Name                 string
	Pending              uint64
	Oldest               string
	Rate                 string
	Failures             string
	FailureRate          string
	Failing              bool
	FailingFor           string
	Attempts             int
	LastError, LastErrAt string
	DeadLetters          int
	DeadErr              string
	Href                 string
}

func (h *Handler) delivery(w http.ResponseWriter, r *http.Request) {
	d := deliveryData{Off: h.o.Delivery == nil, Refresh: int(h.o.RefreshInterval.Milliseconds())}
	if !d.Off {
		d.Spool = h.o.Delivery.Status()
		d.Size = bytesText(d.Spool.Bytes) + " of " + bytesText(d.Spool.MaxSize)
		if d.Spool.MaxSize > 0 {
			d.Used = fmt.Sprintf("%.1f%%", 100*float64(d.Spool.Bytes)/float64(d.Spool.MaxSize))
		}
		now := time.Now()
		series := h.rates.series()
		latest, _ := h.rates.latest()
		for _, b := range d.Spool.Brokers {
			row := brokerRow{Name: b.Name, Pending: b.Pending, Oldest: "—", Failing: b.Failing, Attempts: b.Attempts,
				LastError: b.LastError, Href: "/ui/deadletters?broker=" + url.QueryEscape(b.Name)}
			if !b.OldestPending.IsZero() {
				row.Oldest = ago(now.Sub(b.OldestPending))
			}
			if b.Failing {
				row.FailingFor = ago(now.Sub(b.FailingSince))
			}
			if !b.LastErrorAt.IsZero() {
				row.LastErrAt = b.LastErrorAt.UTC().Format("2006-01-02 15:04:05 UTC")
			}
			row.Rate, row.FailureRate = "—", "—"
			if n := len(series); n > 0 {
				row.Rate = fmt.Sprintf("%.1f/s", series[n-1].delivered[b.Name])
				row.FailureRate = fmt.Sprintf("%.1f/s", series[n-1].failures[b.Name])
			}
			row.Failures = strconv.FormatFloat(latest.brokers[b.Name].failures, 'f', 0, 64)
			n, err := h.dead.count(b.DeadLetterFile)
			row.DeadLetters = n
			if err != nil {
				row.DeadErr = errText(err)
			}
			d.Brokers = append(d.Brokers, row)
		}
		d.Chart = buildChart(series, brokerNames(d.Spool.Brokers), h.o.ChartWindow, now)
	}
	if r.URL.Query().Get("partial") != "" {
		h.writeFragment(w, "delivery", "panel", d)
		return
	}
	h.render(w, r, "delivery", "Delivery", d)
}

func brokerNames(bs []spool.BrokerStatus) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}

type deadLettersData struct {
	Broker  string
	Count   int
	Entries []deadRow
	Err     string
	Known   bool
}

type deadRow struct {
	Time, Sender, EventID, Error, Event string
	Seq                                 uint64
}

func (h *Handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("broker")
	d := deadLettersData{Broker: name}
	if h.o.Delivery != nil {
		for _, b := range h.o.Delivery.Status().Brokers {
			if b.Name != name {
				continue
			}
			d.Known = true
			count, last, err := deadLetterTail(b.DeadLetterFile)
			d.Count = count
			if err != nil {
				d.Err = errText(err)
			}
			for _, dl := range last {
				ev := dl.EventRaw
				if len(dl.Event) > 0 {
					ev = string(dl.Event)
				}
				d.Entries = append(d.Entries, deadRow{Time: dl.Time.UTC().Format("2006-01-02 15:04:05 UTC"), Sender: dl.SenderID,
					EventID: dl.EventID, Error: dl.Error, Event: ev, Seq: dl.Seq})
			}
		}
	}
	if !d.Known {
		w.WriteHeader(http.StatusNotFound)
	}
	h.render(w, r, "deadletters", "Dead letters", d)
}

type consumersData struct {
	Client  string // the consumer API client viewing, "" for the operator
	Off     bool
	Groups  []consumer.GroupStatus
	Refresh int
}

func (h *Handler) consumers(w http.ResponseWriter, r *http.Request) {
	d := consumersData{Off: h.o.Consumers == nil, Refresh: int(h.o.RefreshInterval.Milliseconds())}
	if !d.Off {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		d.Groups = h.o.Consumers.Snapshot(ctx)
		if c := viewerOf(r).client; c != "" {
			d.Client, d.Groups = c, ownedBy(d.Groups, c)
		}
	}
	if r.URL.Query().Get("partial") != "" {
		h.writeFragment(w, "consumers", "panel", d)
		return
	}
	h.render(w, r, "consumers", "Consumers", d)
}

// bytesText formats a size in binary units: "21.4 KiB".
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ownedBy keeps the instances a client created: a tenant sees its own
// consumers, not other clients' groups.
func ownedBy(groups []consumer.GroupStatus, client string) []consumer.GroupStatus {
	var out []consumer.GroupStatus
	for _, g := range groups {
		var mine []consumer.InstanceStatus
		for _, in := range g.Instances {
			if in.Owner == client {
				mine = append(mine, in)
			}
		}
		if len(mine) > 0 {
			out = append(out, consumer.GroupStatus{Group: g.Group, Instances: mine})
		}
	}
	return out
}
