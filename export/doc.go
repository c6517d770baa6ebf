// Package export publishes the events of a tracker store to event brokers,
// as `rasa export` does, without its failure modes.
//
// Events go out in timestamp order across all conversations (Rasa sorts
// per conversation, so resuming from a timestamp could skip events of
// conversations it had not reached), in batches confirmed by the broker
// before the next one is read (Rasa's pika export was fire-and-forget and
// could print "Done!" with events missing, RasaHQ/rasa#8167), streamed
// from the store rather than loaded whole (RasaHQ/rasa#8277). When
// publishing stops, the *PublishError says from which timestamp an export
// completes the set.
//
//	res, err := export.Run(ctx, export.Options{Store: store, Broker: broker.Fanout(brokers)})
//	var pe *export.PublishError
//	if errors.As(err, &pe) {
//		// run again with MinTimestamp = pe.ResumeFrom
//	}
package export
