package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkTopic asks the brokers for the topic's metadata the way the
// producer does (letting brokers with auto.create.topics.enable create
// it), and creates it when it is missing and create is set. It returns the
// client's errors unclassified.
func (b *Broker) checkTopic(ctx context.Context, create bool) error {
	// A topic created a moment ago may not have reached every broker's
	// metadata yet (KRaft propagates it asynchronously): ask again for a
	// little while before calling it missing.
	deadline := time.Now().Add(newTopicGrace)
	for {
		err := b.checkTopicOnce(ctx, create)
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// newTopicGrace is how long checkTopic waits for a topic to appear.
const newTopicGrace = 2 * time.Second

func (b *Broker) checkTopicOnce(ctx context.Context, create bool) error {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(b.cfg.Topic)
	req.Topics = append(req.Topics, t)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		err := kerr.ErrorForCode(rt.ErrorCode)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, kerr.UnknownTopicOrPartition) && create:
			return b.createTopic(ctx)
		case errors.Is(err, kerr.LeaderNotAvailable):
			return nil // just auto-created, electing leaders
		default:
			return err
		}
	}
	return fmt.Errorf("kafka: metadata response without topic %q", b.cfg.Topic)
}

// createTopic creates the topic with the configured partitions and
// replication factor; one that exists already is fine (another parley got
// there first).
func (b *Broker) createTopic(ctx context.Context) error {
	resp, err := b.adm.CreateTopic(ctx, b.cfg.Partitions, b.cfg.ReplicationFactor, nil, b.cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		b.log.Info("created kafka topic", "topic", b.cfg.Topic, "partitions", resp.NumPartitions, "replication_factor", resp.ReplicationFactor)
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return nil
	}
	if resp.ErrMessage != "" {
		err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
	}
	return fmt.Errorf("kafka: create topic %q (create_topic: true): %w", b.cfg.Topic, err)
}
