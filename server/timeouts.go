package server

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Default timeouts of a request (flags of `parley serve`).
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds reading a request's body, from the end
	// of its headers: a client sending one byte a second cannot hold a
	// connection and a handler for long.
	DefaultBodyTimeout = time.Minute
	// DefaultIdleTimeout closes a keep-alive connection with no request.
	DefaultIdleTimeout = 2 * time.Minute
)

// bodyDeadline sets a read deadline for the request's body. It is not
// http.Server.ReadTimeout, which would also end long polls and event
// streams: the deadline is lifted as soon as the body is read, so the
// response may take as long as it needs.
func bodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
			next.ServeHTTP(w, r) // not a real connection (tests)
			return
		}
		// A body left unread keeps the deadline: the server's discarding
		// of it after the handler is bounded too.
		r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body has been read.
type deadlineBody struct {
	io.ReadCloser
	lift func()
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.done()
	}
	return n, err
}

func (b *deadlineBody) done() { b.once.Do(b.lift) }
