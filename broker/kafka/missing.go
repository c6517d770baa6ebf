package kafka

import (
	"context"
	"errors"
)

// A missing topic is not a reason to stay down (issue 21): Rasa's own
// producer never checks, and the spool holds the events until the topic
// exists. Open succeeds, Ping reports it to /ready, Publish fails with the
// retriable ErrTopicNotFound, and the log says so once when the topic goes
// missing and once when it is back, not on every retry.

// noteTopic records what an operation learnt about the topic: err is the
// classified error of a metadata request or a produce (nil: the topic
// answered).
func (b *Broker) noteTopic(err error) {
	switch {
	case errors.Is(err, ErrTopicNotFound):
		if !b.topicMissing.Swap(true) {
			hint := "create it (or set create_topic: true); events wait in the spool and are delivered once it exists"
			if b.cfg.CreateTopic {
				hint = "parley creates it again on the next retry (create_topic: true)"
			}
			b.log.Warn("kafka topic does not exist: "+hint, "topic", b.cfg.Topic)
		}
	case err == nil:
		if b.topicMissing.Swap(false) {
			b.log.Info("kafka topic exists now: delivering", "topic", b.cfg.Topic)
		}
	}
}

// pingTopic checks the topic for Ping. A topic known to be missing is
// asked about once, without checkTopic's grace for a topic just created,
// so that /ready answers at once while it is missing.
func (b *Broker) pingTopic(ctx context.Context) error {
	if b.topicMissing.Load() {
		return b.checkTopicOnce(ctx, b.cfg.CreateTopic)
	}
	return b.checkTopic(ctx, b.cfg.CreateTopic)
}
