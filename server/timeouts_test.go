package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

// serve runs s on a loopback port until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	s.opts.Addr = "127.0.0.1:0"
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// TestSlowBodyTimesOut: a body sent one byte at a time is cut off after
// the body timeout with 408, and nothing of it is published (issue 14);
// the same server still takes a normal request, and a response that takes
// longer than the body timeout once the body is in is not cut.
func TestSlowBodyTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	slowPublish := make(chan struct{})
	s, rec := newTestServer(t, Options{BodyTimeout: timeout})
	inner := s.opts.Publisher
	s.opts.Publisher = publisherFunc(func(ctx context.Context, evs ...event.Event) error {
		if evs[0].SenderID == "slow" {
			<-slowPublish
		}
		return inner.Publish(ctx, evs...)
	})
	addr := serve(t, s)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := fixtures.Events()[0]
	fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 50ms: the whole body would take seconds
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for _, c := range body {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("slow body answered after %v", d)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("%d events published from a timed-out body", n)
	}

	// A body sent at once, whose publish outlasts the body timeout.
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/events", "application/json", strings.NewReader(`{"event":"action","name":"a","timestamp":1,"sender_id":"slow"}`))
		if err != nil {
			t.Error(err)
			respc <- nil
			return
		}
		resp.Body.Close()
		respc <- resp
	}()
	deadline := time.Now().Add(timeout * 3)
	for time.Now().Before(deadline) { // outlast the body timeout
		select {
		case r := <-respc:
			t.Fatalf("answered before the publish finished: %v", r)
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(slowPublish)
	if r := <-respc; r == nil || r.StatusCode != http.StatusAccepted {
		t.Fatalf("slow publish: %v, want 202", r)
	}
}
