package spool

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrFull is returned by Append and Publish when accepting the events
	// would take the spool past its max_size. Nothing is dropped to make
	// room: the caller should answer 503 with Retry-After (see RetryAfter)
	// and the client retry once delivery has freed space.
	ErrFull = errors.New("spool is full")
	// ErrTooLarge is returned for an event, or one Append call, that can
	// never fit: bigger than the largest record (64 MiB) or than max_size.
	// Retrying cannot help (errors.Is(err, broker.ErrPermanent) holds too).
	ErrTooLarge = errors.New("too large for the spool")
	// ErrLocked is returned by Open when another process has the directory.
	ErrLocked = errors.New("spool directory is in use by another process")
)

// FullError is the error behind ErrFull; it carries a suggested wait.
type FullError struct {
	// RetryAfter is how long the client should wait before retrying.
	RetryAfter time.Duration
	// Used and Max are the spool's size in bytes and its limit.
	Used, Max int64
}

func (e *FullError) Error() string {
	return fmt.Sprintf("spool is full (%d of %d bytes hold undelivered events); retry after %s", e.Used, e.Max, e.RetryAfter)
}

// Is makes errors.Is(err, ErrFull) hold.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// RetryAfter returns the wait suggested by a full spool's error, for an
// HTTP Retry-After header.
func RetryAfter(err error) (time.Duration, bool) {
	var fe *FullError
	if errors.As(err, &fe) {
		return fe.RetryAfter, true
	}
	return 0, false
}
