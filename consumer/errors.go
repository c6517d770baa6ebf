package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error codes of the JSON error body {"error_code": ..., "message": ...},
// Confluent REST Proxy's and Mix's: the HTTP status followed by two digits.
const (
	CodeUnauthorized      = 40101 // no, bad or expired token
	CodeForbidden         = 40301 // topic outside the token's scope, another client's group or instance, or a non-loopback caller in open mode
	CodeNotFound          = 40400 // no such endpoint
	CodeTopicNotFound     = 40401
	CodePartitionNotFound = 40402
	CodeConsumerNotFound  = 40403
	CodeConsumerExpired   = 40404 // parley: the instance existed and expired
	CodeMethodNotAllowed  = 40500
	CodeNotAcceptable     = 40601 // Accept names no type the route answers with
	CodeConsumerExists    = 40902
	CodeIllegalState      = 40903
	CodeStreamReplaced    = 40904 // parley: a newer SSE stream of the instance took over
	CodeOffsetOutOfRange  = 40905 // parley: a commit past the end, or a read under auto.offset.reset=none of a position outside the partition
	CodeInvalidRequest    = 42201
	CodeInvalidConfig     = 42204 // Confluent's "Invalid consumer configuration"
	CodeRateLimited       = 42901
	CodeSourceError       = 50002 // Confluent's "Kafka error"
	CodeUnavailable       = 50301 // shutting down
)

// Error is an API error: an HTTP status, an error code and a message for
// the client. Handlers return it; anything else is a 500.
type Error struct {
	Status  int
	Code    int
	Message string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration
	err        error
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.err }

func apiErr(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return apiErr(http.StatusUnprocessableEntity, CodeInvalidRequest, format, args...)
}

func invalidConfig(format string, args ...any) *Error {
	return apiErr(http.StatusUnprocessableEntity, CodeInvalidConfig, "Invalid consumer configuration: "+format, args...)
}

func illegalState(format string, args ...any) *Error {
	return apiErr(http.StatusConflict, CodeIllegalState, "Illegal state: "+format, args...)
}

func forbiddenTopic(topic string) *Error {
	return apiErr(http.StatusForbidden, CodeForbidden, "Not authorized to read topic %q.", topic)
}

// asAPIError maps an error from the engine or a source to what the client
// sees.
func asAPIError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrTopicNotFound):
		e = apiErr(http.StatusNotFound, CodeTopicNotFound, "Topic not found.")
	case errors.Is(err, ErrPartitionNotFound):
		e = apiErr(http.StatusNotFound, CodePartitionNotFound, "Partition not found.")
	case errors.Is(err, ErrConsumerNotFound):
		e = apiErr(http.StatusNotFound, CodeConsumerNotFound, "Consumer instance not found.")
	case errors.Is(err, ErrConsumerExists):
		e = apiErr(http.StatusConflict, CodeConsumerExists, "Consumer with specified consumer ID already exists in the specified consumer group.")
	case errors.Is(err, ErrOffsetOutOfRange):
		e = apiErr(http.StatusConflict, CodeOffsetOutOfRange, "Offset out of range: %s.", strings.TrimSuffix(err.Error(), ": "+ErrOffsetOutOfRange.Error()))
	case errors.Is(err, ErrNotAssigned), errors.Is(err, ErrRebalanced):
		e = illegalState("%v", err)
	case errors.Is(err, ErrClosed):
		e = apiErr(http.StatusServiceUnavailable, CodeUnavailable, "The consumer API is shutting down.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e = apiErr(http.StatusServiceUnavailable, CodeUnavailable, "The request was cancelled: %v", err)
	default:
		e = apiErr(http.StatusInternalServerError, CodeSourceError, "Source error: %v", err)
	}
	e.err = err
	return e
}
