package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// maxBody caps request bodies: they hold a few topic names or offsets.
const maxBody = 1 << 20

// readBody decodes the JSON body into v, refusing unknown fields (a
// misspelt "offsets" must not turn a commit of some offsets into a commit
// of everything). It returns false for an absent or empty body.
func readBody(r *http.Request, v any) (bool, error) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return false, invalid("The request body is larger than %d bytes.", maxBody)
		}
		return false, invalid("Reading the request body: %v.", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, invalid("Invalid JSON body: %s.", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return false, invalid("Invalid JSON body: more than one JSON value.")
	}
	return true, nil
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, err = w.Write(data)
	return err
}

func writeError(w http.ResponseWriter, e *Error) { writeErrorAs(w, e, "application/json") }

// errorType is the content type of a route's errors: Confluent's clients
// get Confluent's vendor type, as from its REST Proxy.
func errorType(rt *route) string {
	if rt.tag == tagConfluent {
		return "application/vnd.kafka.v2+json"
	}
	return "application/json"
}

func writeErrorAs(w http.ResponseWriter, e *Error, contentType string) {
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	body, _ := json.Marshal(struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// contentType is the response type of a route: Confluent's clients expect
// their vendor types.
func (rc *reqCtx) contentType() string {
	if rc.route.tag == tagConfluent {
		return "application/vnd.kafka.v2+json"
	}
	return "application/json"
}

// --- partitions ---

// topicFor picks the topic of a Mix partition call: ?topic=, else the
// token's topic, else the default one.
func (h *Handler) topicFor(r *http.Request, rc *reqCtx) (string, error) {
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		if rc.claims != nil && len(rc.claims.Topics) > 0 {
			return rc.claims.Topics[0], nil
		}
		return h.cfg.Topic, nil
	}
	return topic, rc.allow(topic)
}

func (h *Handler) partitions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	topic, err := h.topicFor(r, rc)
	if err != nil {
		return err
	}
	ps, err := h.src.Partitions(r.Context(), topic)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), struct {
		Topic      string  `json:"topic"`
		Partitions []int32 `json:"partitions"`
	}{topic, ps})
}

func (h *Handler) partitionOffsets(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	topic, err := h.topicFor(r, rc)
	if err != nil {
		return err
	}
	p, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil || p < 0 {
		return invalid("Partition %q is not a partition number.", r.PathValue("partition"))
	}
	offs, err := h.src.Offsets(r.Context(), topic, int32(p))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), offs)
}

// --- creating and deleting ---

// parseSettings reads a create body: Mix's and Confluent's consumer
// configuration, whose values clients send as strings ("1000", "false")
// or as JSON numbers and booleans. auto.commit.enable defaults to false on
// the Mix paths (Mix's documented create body; Nuance's client commits by
// hand without sending it) and to true on Confluent's (Kafka's default).
func (h *Handler) parseSettings(raw map[string]json.RawMessage, confluent bool) (settings, string, error) {
	s := settings{reset: ResetLatest, autoCommit: confluent, fetchMinBytes: -1, binary: confluent}
	var name string
	for k, v := range raw {
		val, err := scalar(v)
		if err != nil {
			return s, "", invalidConfig("%q: %v", k, err)
		}
		switch k {
		case "name", "id": // id: Confluent's v1 API
			if !confluent {
				return s, "", invalidConfig("%q: the consumer-name header names the consumer", k)
			}
			name = val
		case "format":
			switch val {
			case "json":
				s.binary = false
			case "binary":
				s.binary = true
			default:
				return s, "", invalidConfig("format %q is not supported (json or binary)", val)
			}
		case "auto.offset.reset":
			switch val {
			case "earliest", "smallest":
				s.reset = ResetEarliest
			case "latest", "largest":
				s.reset = ResetLatest
			case "none":
				s.reset = ResetNone
			default:
				return s, "", invalidConfig("auto.offset.reset %q must be earliest, latest or none", val)
			}
		case "auto.commit.enable":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return s, "", invalidConfig("auto.commit.enable %q must be true or false", val)
			}
			s.autoCommit = b
		case "fetch.min.bytes":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return s, "", invalidConfig("fetch.min.bytes %q is not a number", val)
			}
			s.fetchMinBytes = n
		case "consumer.request.timeout.ms":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return s, "", invalidConfig("consumer.request.timeout.ms %q is not a number of milliseconds", val)
			}
			s.requestTimeout = time.Duration(n) * time.Millisecond
		default:
			return s, "", invalidConfig("unknown key %q (known: auto.offset.reset, auto.commit.enable, fetch.min.bytes, consumer.request.timeout.ms, format%s)", k, map[bool]string{true: ", name"}[confluent])
		}
	}
	return s, name, nil
}

// scalar returns a JSON string, number or boolean as text.
func scalar(v json.RawMessage) (string, error) {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return "", err
	}
	switch x := x.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("want a string, number or boolean")
}

func (h *Handler) createMix(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var raw map[string]json.RawMessage
	if _, err := readBody(r, &raw); err != nil {
		return err
	}
	s, _, err := h.parseSettings(raw, false)
	if err != nil {
		return err
	}
	if err := h.checkGroup(r.Context(), rc); err != nil {
		return err
	}
	if _, err := h.eng.create(r.Context(), rc.key, rc.owner, s); err != nil {
		return err
	}
	return noContent(w)
}

func (h *Handler) createConfluent(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if allow := h.shadowed["/consumers/"+rc.key.group]; allow != "" {
		// "POST /consumers/records" is a Mix path used with the wrong
		// method, not a group called records.
		w.Header().Set("Allow", allow)
		return apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "HTTP 405 Method Not Allowed")
	}
	var raw map[string]json.RawMessage
	if _, err := readBody(r, &raw); err != nil {
		return err
	}
	s, name, err := h.parseSettings(raw, true)
	if err != nil {
		return err
	}
	if name == "" {
		name = "rest-consumer-" + uuid.NewString()
	}
	rc.key.name = name
	if err := h.checkGroup(r.Context(), rc); err != nil {
		return err
	}
	if _, err := h.eng.create(r.Context(), rc.key, rc.owner, s); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), struct {
		InstanceID string `json:"instance_id"`
		BaseURI    string `json:"base_uri"`
	}{name, baseURL(r) + "/consumers/" + url.PathEscape(rc.key.group) + "/instances/" + url.PathEscape(name)})
}

// baseURL is the URL the client reached the API at, behind a proxy too.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host = fh
	}
	return scheme + "://" + host
}

func (h *Handler) deleteConsumer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := h.eng.remove(r.Context(), rc.in); err != nil {
		return err
	}
	return noContent(w)
}

// --- subscription and assignment ---

type topicsBody struct {
	Topics       []string `json:"topics"`
	TopicPattern string   `json:"topic_pattern,omitempty"`
}

type partitionsBody struct {
	Partitions []TopicPartition `json:"partitions"`
}

type offsetsBody struct {
	Offsets []TopicPartitionOffset `json:"offsets"`
}

func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var b topicsBody
	if ok, err := readBody(r, &b); err != nil {
		return err
	} else if !ok {
		return invalid("The body must list the topics: {\"topics\": [\"...\"]}.")
	}
	if b.TopicPattern != "" {
		if len(b.Topics) > 0 {
			return invalid("Give either topics or topic_pattern, not both.")
		}
		topics, err := h.matchTopics(r.Context(), rc, b.TopicPattern)
		if err != nil {
			return err
		}
		b.Topics = topics
	}
	if len(b.Topics) == 0 {
		return invalid("The body must list at least one topic: {\"topics\": [\"...\"]}.")
	}
	for _, t := range b.Topics {
		if err := h.checkTopic(r, rc, t); err != nil {
			return err
		}
	}
	if err := rc.in.subscribe(r.Context(), b.Topics); err != nil {
		return err
	}
	return noContent(w)
}

// matchTopics returns the source's topics the token may read that the
// regular expression matches as a whole (Kafka's pattern subscription),
// as of now: a topic created later needs a new subscription.
func (h *Handler) matchTopics(ctx context.Context, rc *reqCtx, pattern string) ([]string, error) {
	if len(pattern) > 1024 {
		return nil, invalid("topic_pattern is longer than 1024 bytes.")
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return nil, invalid("topic_pattern %q is not a regular expression: %v.", pattern, err)
	}
	all, err := h.src.Topics(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range all {
		if re.MatchString(t) && rc.allow(t) == nil {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, apiErr(http.StatusNotFound, CodeTopicNotFound, "No topic you may read matches topic_pattern %q.", pattern)
	}
	return out, nil
}

// checkTopic checks the token may read topic and that it exists.
func (h *Handler) checkTopic(r *http.Request, rc *reqCtx, topic string) error {
	if topic == "" {
		return invalid("A topic name is empty.")
	}
	if err := rc.allow(topic); err != nil {
		return err
	}
	_, err := h.src.Partitions(r.Context(), topic)
	return err
}

// checkPartitions checks every partition is readable and exists.
func (h *Handler) checkPartitions(r *http.Request, rc *reqCtx, tps []TopicPartition) error {
	known := map[string][]int32{}
	for _, tp := range tps {
		if tp.Topic == "" {
			return invalid("A partition has no topic.")
		}
		if err := rc.allow(tp.Topic); err != nil {
			return err
		}
		ps, ok := known[tp.Topic]
		if !ok {
			var err error
			if ps, err = h.src.Partitions(r.Context(), tp.Topic); err != nil {
				return err
			}
			known[tp.Topic] = ps
		}
		found := false
		for _, p := range ps {
			found = found || p == tp.Partition
		}
		if !found {
			return fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, ErrPartitionNotFound)
		}
	}
	return nil
}

func (h *Handler) subscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	topics := rc.in.subscription()
	if topics == nil {
		topics = []string{}
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), topicsBody{Topics: topics})
}

func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := rc.in.unsubscribe(r.Context()); err != nil {
		return err
	}
	return noContent(w)
}

func (h *Handler) assign(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var b partitionsBody
	if ok, err := readBody(r, &b); err != nil {
		return err
	} else if !ok || b.Partitions == nil {
		return invalid("The body must list the partitions: {\"partitions\": [{\"topic\": \"...\", \"partition\": 0}]}.")
	}
	if err := h.checkPartitions(r, rc, b.Partitions); err != nil {
		return err
	}
	if err := rc.in.assign(r.Context(), b.Partitions); err != nil {
		return err
	}
	return noContent(w)
}

func (h *Handler) assignments(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	tps, err := rc.in.assignment(r.Context())
	if err != nil {
		return err
	}
	if tps == nil {
		tps = []TopicPartition{}
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), partitionsBody{Partitions: tps})
}

// --- records ---

// readOptionsFor reads ?timeout= and ?max_bytes=.
func (h *Handler) readOptionsFor(q url.Values, rc *reqCtx) (readOptions, error) {
	o := readOptions{wait: h.cfg.RequestTimeout, maxRecords: h.cfg.MaxRecords, maxBytes: h.cfg.MaxBytes}
	if rc.in.settings.requestTimeout > 0 {
		o.wait = rc.in.settings.requestTimeout
	}
	if v := q.Get("timeout"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return o, invalid("timeout %q must be a number of milliseconds, 0 or more.", v)
		}
		o.wait = time.Duration(ms) * time.Millisecond
	}
	o.wait = min(o.wait, h.cfg.MaxWait)
	if v := q.Get("max_bytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return o, invalid("max_bytes %q must be a number of bytes, 1 or more.", v)
		}
		o.maxBytes = min(n, h.cfg.MaxBytes)
	}
	return o, nil
}

const ndjsonType = "application/x-ndjson"

// acceptsNDJSON tells whether the client asked for records one per line.
func acceptsNDJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), ndjsonType) {
				return true
			}
		}
	}
	return false
}

// valueOnlyParam reads ?data=: record (the default) or value.
func valueOnlyParam(q url.Values) (bool, error) {
	switch d := q.Get("data"); d {
	case "", "record":
		return false, nil
	case "value":
		return true, nil
	default:
		return false, invalid("data %q is neither record nor value.", d)
	}
}

// checkReading checks the token may read every topic the instance reads
// (a narrower token than the one that subscribed).
func (rc *reqCtx) checkReading() error {
	for _, t := range rc.in.topicsRead() {
		if err := rc.allow(t); err != nil {
			return err
		}
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (h *Handler) records(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	opts, err := h.readOptionsFor(q, rc)
	if err != nil {
		return err
	}
	if err := rc.checkReading(); err != nil {
		return err
	}
	f := recordsFormat{binary: rc.in.settings.binary, ndjson: acceptsNDJSON(r)}
	if f.valueOnly, err = valueOnlyParam(q); err != nil {
		return err
	}
	v1 := rc.route.op == "confluentV1ReadTopic"
	if err := checkAccept(r, rc.in.settings.binary, v1); err != nil {
		return err
	}
	if v1 {
		if err := h.v1Subscribe(r, rc); err != nil {
			return err
		}
	}
	recs, err := rc.in.read(r.Context(), opts)
	if err != nil {
		return err
	}
	for _, ev := range rc.in.takeResets() {
		w.Header().Add(ResetHeader, ev.describe())
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	body := appendRecords((*bp)[:0], recs, f)
	*bp = body
	ct := rc.contentType()
	switch {
	case f.ndjson:
		ct = ndjsonType
	case v1 && f.binary:
		ct = "application/vnd.kafka.binary.v1+json"
	case v1:
		ct = "application/vnd.kafka.json.v1+json"
	case rc.route.tag == tagConfluent && f.binary:
		ct = "application/vnd.kafka.binary.v2+json"
	case rc.route.tag == tagConfluent:
		ct = "application/vnd.kafka.json.v2+json"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, err = w.Write(body)
	return err
}

// --- offsets ---

// restOffsets converts offsets of the REST API (the last record
// processed, as Mix and Confluent take them) to Kafka's (the next to
// read), checking each partition may be read.
func (rc *reqCtx) restOffsets(offs []TopicPartitionOffset, plusOne bool) ([]TopicPartitionOffset, error) {
	out := make([]TopicPartitionOffset, len(offs))
	for i, o := range offs {
		if o.Topic == "" {
			return nil, invalid("offsets[%d] has no topic.", i)
		}
		if o.Offset < 0 {
			return nil, invalid("offsets[%d].offset %d is negative.", i, o.Offset)
		}
		if err := rc.allow(o.Topic); err != nil {
			return nil, err
		}
		out[i] = o
		if plusOne {
			out[i].Offset++
		}
	}
	return out, nil
}

func (h *Handler) commit(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var b struct {
		Offsets *[]TopicPartitionOffset `json:"offsets"`
	}
	if _, err := readBody(r, &b); err != nil {
		return err
	}
	var err error
	switch {
	case b.Offsets == nil:
		// No body (or no "offsets"): commit everything read, as
		// Confluent's commitSync().
		err = rc.in.commit(r.Context(), nil)
	case len(*b.Offsets) > 0:
		var offs []TopicPartitionOffset
		if offs, err = rc.restOffsets(*b.Offsets, true); err == nil {
			if err = h.checkCommit(r.Context(), offs); err == nil {
				err = rc.in.commit(r.Context(), offs)
			}
		}
	}
	if err != nil {
		return err
	}
	if rc.route.tag == tagConfluent {
		w.Header().Set("Content-Type", rc.contentType())
		_, err := w.Write([]byte("[]"))
		return err
	}
	return noContent(w)
}

// checkCommit refuses a commit past the end of a partition: the group
// would wait there for records that do not exist yet and skip everything
// written until then. (Kafka's brokers take any offset and leave the
// consumer to reset on its next fetch; parley refuses, because the client
// that commits such an offset has made a mistake it should hear about,
// and a commit below the first offset held is still taken: reading from
// it resets per auto.offset.reset, as in Kafka.)
func (h *Handler) checkCommit(ctx context.Context, offs []TopicPartitionOffset) error {
	for _, o := range offs {
		b, err := h.src.Offsets(ctx, o.Topic, o.Partition)
		if err != nil {
			return err
		}
		if o.Offset > b.End {
			return apiErr(http.StatusConflict, CodeOffsetOutOfRange, "Offset out of range: %s[%d] holds offsets %d to %d; the last record processed can be at most %d, and %d was committed.",
				o.Topic, o.Partition, b.Beginning, b.End-1, b.End-1, o.Offset-1)
		}
	}
	return nil
}

func (h *Handler) committed(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var b partitionsBody
	if ok, err := readBody(r, &b); err != nil {
		return err
	} else if !ok || len(b.Partitions) == 0 {
		return invalid("The body must list the partitions: {\"partitions\": [{\"topic\": \"...\", \"partition\": 0}]}.")
	}
	for _, tp := range b.Partitions {
		if err := rc.allow(tp.Topic); err != nil {
			return err
		}
	}
	offs, err := rc.in.c.Committed(r.Context(), b.Partitions)
	if err != nil {
		return err
	}
	type committedOffset struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Metadata  string `json:"metadata"`
	}
	out := make([]committedOffset, len(offs))
	for i, o := range offs {
		out[i] = committedOffset(o)
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), struct {
		Offsets []committedOffset `json:"offsets"`
	}{out})
}

// --- positions ---

func (h *Handler) seek(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var b offsetsBody
	if ok, err := readBody(r, &b); err != nil {
		return err
	} else if !ok || len(b.Offsets) == 0 {
		return invalid("The body must list offsets: {\"offsets\": [{\"topic\": \"...\", \"partition\": 0, \"offset\": 42}]}.")
	}
	offs, err := rc.restOffsets(b.Offsets, false)
	if err != nil {
		return err
	}
	if err := rc.in.seek(r.Context(), offs); err != nil {
		return err
	}
	return noContent(w)
}

func (h *Handler) seekBeginning(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return h.seekTo(w, r, rc, OffsetBeginning)
}

func (h *Handler) seekEnd(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return h.seekTo(w, r, rc, OffsetEnd)
}

func (h *Handler) seekTo(w http.ResponseWriter, r *http.Request, rc *reqCtx, where int64) error {
	var b partitionsBody
	if ok, err := readBody(r, &b); err != nil {
		return err
	} else if !ok || len(b.Partitions) == 0 {
		return invalid("The body must list the partitions: {\"partitions\": [{\"topic\": \"...\", \"partition\": 0}]}.")
	}
	offs := make([]TopicPartitionOffset, len(b.Partitions))
	for i, tp := range b.Partitions {
		if err := rc.allow(tp.Topic); err != nil {
			return err
		}
		offs[i] = TopicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: where}
	}
	if err := rc.in.seek(r.Context(), offs); err != nil {
		return err
	}
	return noContent(w)
}
