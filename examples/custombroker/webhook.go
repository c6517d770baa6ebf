package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

// newWebhook is the broker.Factory: it reads and checks the section, with
// no I/O, and returns the Opener that makes the broker.
func newWebhook(sec *config.Section) (broker.Opener, error) {
	target := sec.String("url", "")
	timeout := sec.Duration("timeout", 10*time.Second)
	if u, err := url.Parse(target); target == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		sec.Errorf("url", "must be an http:// or https:// URL, got %q", target)
	}
	sec.WarnUnused("webhook")
	if err := sec.Err(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, env broker.Env) (broker.Broker, error) {
		return &webhook{url: target, client: &http.Client{Timeout: timeout}}, nil
	}, nil
}

// webhook publishes by POSTing NDJSON; a 2xx answer means delivered.
type webhook struct {
	url    string
	client *http.Client
	mu     sync.RWMutex // held for reading by Publish, for writing by Close
	closed bool
}

var _ broker.Broker = (*webhook)(nil)

func (w *webhook) Publish(ctx context.Context, evs ...event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.RLock() // Close waits for publishes in flight
	defer w.mu.RUnlock()
	if w.closed {
		return broker.ErrClosed
	}
	if len(evs) == 0 {
		return nil
	}
	var body bytes.Buffer
	for _, ev := range evs {
		body.Write(ev.RasaJSON())
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // drain for connection reuse
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return broker.Permanent(fmt.Errorf("webhook: %s", resp.Status)) // retrying cannot help
	default:
		return fmt.Errorf("webhook: %s", resp.Status)
	}
}

func (w *webhook) Close(context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return nil
}
