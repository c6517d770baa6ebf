package consumer

import (
	"net/http"
	"slices"
	"strconv"
)

// Confluent REST Proxy v2's topic metadata, limited to the topics the
// token may read. parley does not know leaders and replicas (the SQL
// source has none; the Kafka source does not expose them): partitions
// carry leader -1 and no replicas.

type partitionInfo struct {
	Partition int32 `json:"partition"`
	Leader    int32 `json:"leader"`
	Replicas  []any `json:"replicas"`
}

func (h *Handler) listTopics(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	all, err := h.src.Topics(r.Context())
	if err != nil {
		return err
	}
	out := slices.DeleteFunc(all, func(t string) bool { return rc.allow(t) != nil })
	if out == nil {
		out = []string{}
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), out)
}

func (h *Handler) topicPartitions(r *http.Request, rc *reqCtx) (string, []partitionInfo, error) {
	topic := r.PathValue("topic")
	if err := rc.allow(topic); err != nil {
		return "", nil, err
	}
	ps, err := h.src.Partitions(r.Context(), topic)
	if err != nil {
		return "", nil, err
	}
	out := make([]partitionInfo, len(ps))
	for i, p := range ps {
		out[i] = partitionInfo{Partition: p, Leader: -1, Replicas: []any{}}
	}
	return topic, out, nil
}

func (h *Handler) getTopic(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	topic, ps, err := h.topicPartitions(r, rc)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), struct {
		Name       string            `json:"name"`
		Configs    map[string]string `json:"configs"`
		Partitions []partitionInfo   `json:"partitions"`
	}{topic, map[string]string{}, ps})
}

func (h *Handler) getTopicPartitions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	_, ps, err := h.topicPartitions(r, rc)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rc.contentType(), ps)
}

func (h *Handler) getTopicPartitionOffsets(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	topic := r.PathValue("topic")
	if err := rc.allow(topic); err != nil {
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

// v1Subscribe serves Confluent's v1 read, GET .../instances/{name}/topics/{topic}
// (what the kafka-rest npm client uses): reading a topic subscribes the
// instance to it, replacing a subscription to other topics.
func (h *Handler) v1Subscribe(r *http.Request, rc *reqCtx) error {
	topic := r.PathValue("topic")
	if slices.Equal(rc.in.subscription(), []string{topic}) {
		return nil
	}
	if err := h.checkTopic(r, rc, topic); err != nil {
		return err
	}
	return rc.in.subscribe(r.Context(), []string{topic})
}
