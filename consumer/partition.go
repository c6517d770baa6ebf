package consumer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// jsonInt decodes an integer given as a JSON number or as a string
// holding one: Nuance's Mix client sends partitions as strings
// ({"partition": "0"}), Confluent's clients as numbers.
func jsonInt(raw json.RawMessage, bits int) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", raw)
	}
	return n, nil
}

// decodeStrict decodes data into v refusing unknown fields, as readBody
// does for the whole body (a custom UnmarshalJSON escapes its decoder).
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// UnmarshalJSON accepts the partition as a number or a numeric string.
func (tp *TopicPartition) UnmarshalJSON(data []byte) error {
	var w struct {
		Topic     string          `json:"topic"`
		Partition json.RawMessage `json:"partition"`
	}
	if err := decodeStrict(data, &w); err != nil {
		return err
	}
	tp.Topic = w.Topic
	tp.Partition = 0
	if w.Partition != nil {
		p, err := jsonInt(w.Partition, 32)
		if err != nil {
			return fmt.Errorf("partition: %w", err)
		}
		tp.Partition = int32(p)
	}
	return nil
}

// UnmarshalJSON accepts the partition and the offset as numbers or
// numeric strings.
func (o *TopicPartitionOffset) UnmarshalJSON(data []byte) error {
	var w struct {
		Topic     string          `json:"topic"`
		Partition json.RawMessage `json:"partition"`
		Offset    json.RawMessage `json:"offset"`
		Metadata  string          `json:"metadata"`
	}
	if err := decodeStrict(data, &w); err != nil {
		return err
	}
	*o = TopicPartitionOffset{Topic: w.Topic, Metadata: w.Metadata}
	if w.Partition != nil {
		p, err := jsonInt(w.Partition, 32)
		if err != nil {
			return fmt.Errorf("partition: %w", err)
		}
		o.Partition = int32(p)
	}
	if w.Offset != nil {
		off, err := jsonInt(w.Offset, 64)
		if err != nil {
			return fmt.Errorf("offset: %w", err)
		}
		o.Offset = off
	}
	return nil
}
