package kafka

import (
	"context"
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger sends franz-go's logs to parley's logger. franz-go logs every
// request at info level, so only its warnings and errors (failed dials,
// failed requests) pass, and Publish's errors say the rest.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	switch {
	case l.log.Enabled(context.Background(), slog.LevelDebug):
		return kgo.LogLevelInfo
	case l.log.Enabled(context.Background(), slog.LevelWarn):
		return kgo.LogLevelWarn
	case l.log.Enabled(context.Background(), slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
		if aboutMissingTopic(keyvals) {
			lvl = slog.LevelDebug // said once by the broker (missing.go), not per metadata load
		}
	}
	l.log.Log(context.Background(), lvl, "kafka client: "+msg, keyvals...)
}

// aboutMissingTopic reports a log line whose error is a missing topic.
func aboutMissingTopic(keyvals []any) bool {
	for _, v := range keyvals {
		if err, ok := v.(error); ok && (errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)) {
			return true
		}
	}
	return false
}
