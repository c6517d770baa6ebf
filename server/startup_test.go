package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
)

// failingBrokerType is a broker type whose open fails, registered once
// for the start-up tests.
const failingBrokerType = "startup-test-failing"

var errInjected = errors.New("injected start-up failure")

func init() {
	broker.Register(failingBrokerType, func(sec *config.Section) (broker.Opener, error) {
		return func(context.Context, broker.Env) (broker.Broker, error) { return nil, errInjected }, nil
	})
}

// startupYAML opens every part the gateway has: a file broker and the SQL
// broker (which the consumer API's SQL source follows), the spool, and the
// SQL tracker store, all under dir.
func startupYAML(dir string) string {
	return fmt.Sprintf(`event_broker:
  - type: sql
    dialect: sqlite
    db: %[1]s/events.db
  - type: file
    path: %[1]s/rasa_event.log
tracker_store:
  type: sql
  dialect: sqlite
  db: %[1]s/rasa.db
spool:
  dir: %[1]s/spool
consumer_api:
  source: sql
`, dir)
}

// resources is what a failed start must give back.
type resources struct {
	goroutines int
	fds        int
}

func openResources(t *testing.T) resources {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("needs /proc/self/fd:", err)
	}
	return resources{goroutines: runtime.NumGoroutine(), fds: len(ents)}
}

// waitReleased polls until goroutines and file descriptors are back to
// before (goroutines may take a moment to return after being stopped).
func waitReleased(t *testing.T, before resources) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := openResources(t)
		if now.goroutines <= before.goroutines && now.fds <= before.fds {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fds, _ := os.ReadDir("/proc/self/fd")
			var names []string
			for _, e := range fds {
				l, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
				names = append(names, l)
			}
			t.Fatalf("left open after a failed start: goroutines %d -> %d, fds %d -> %d\nfds: %v\n%s",
				before.goroutines, now.goroutines, before.fds, now.fds, names, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// warmUp starts and closes a gateway once, so that one-time
// initialisations (SQLite's, metrics') do not count as leaks.
func warmUp(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	ep, err := config.Parse("endpoints.yml", []byte(startupYAML(dir)))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(context.Background(), ep, GatewayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStartupFailureReleasesEverything injects a failure at each step of
// start-up (issue 21): NewGateway (or Run, for the listener) returns an
// error naming the step, does not panic, and leaves no goroutine, file or
// listener behind.
func TestStartupFailureReleasesEverything(t *testing.T) {
	warmUp(t)
	steps := []string{stepBrokers, stepConsumerSource, stepSpool, stepTrackerStore, stepConversations, stepConsumerAPI, stepServer, stepListen}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			ep, err := config.Parse("endpoints.yml", []byte(startupYAML(dir)))
			if err != nil {
				t.Fatal(err)
			}
			before := openResources(t)
			var reached []string
			o := GatewayOptions{
				Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
				failStep: func(s string) error {
					reached = append(reached, s)
					if s == step {
						return errInjected
					}
					return nil
				},
			}
			g, err := NewGateway(context.Background(), ep, o)
			if err == nil {
				err = g.Run(context.Background())
			}
			if !errors.Is(err, errInjected) {
				t.Fatalf("err = %v, want the injected failure", err)
			}
			if want := "start: " + step; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name the step (%q)", err, want)
			}
			if reached[len(reached)-1] != step {
				t.Fatalf("steps reached %v, want to stop at %q", reached, step)
			}
			waitReleased(t, before)
		})
	}
}

// TestStartupRealFailures makes each part fail for real: a broker that
// cannot open after one that did, a spool directory that is a file, a
// tracker store database in a directory that is a file, a taken address.
func TestStartupRealFailures(t *testing.T) {
	warmUp(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cases := []struct {
		name, want string
		edit       func(dir, yml string) string
		addr       string
	}{
		{"second broker", "start: " + stepBrokers + ": open " + failingBrokerType + " broker (endpoints.yml:", func(dir, yml string) string {
			return strings.Replace(yml, "tracker_store:", "  - type: "+failingBrokerType+"\ntracker_store:", 1)
		}, ""},
		{"spool", "start: " + stepSpool + ":", func(dir, yml string) string {
			os.WriteFile(filepath.Join(dir, "spool"), []byte("a file"), 0o600)
			return yml
		}, ""},
		{"tracker store", "start: " + stepTrackerStore + ":", func(dir, yml string) string {
			os.WriteFile(filepath.Join(dir, "notadir"), []byte("a file"), 0o600)
			return strings.Replace(yml, dir+"/rasa.db", dir+"/notadir/rasa.db", 1)
		}, ""},
		{"listener", "start: " + stepListen + ": server: listen on " + taken.Addr().String() + ": ", func(dir, yml string) string { return yml }, taken.Addr().String()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ep, err := config.Parse("endpoints.yml", []byte(c.edit(dir, startupYAML(dir))))
			if err != nil {
				t.Fatal(err)
			}
			before := openResources(t)
			addr := c.addr
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			g, err := NewGateway(context.Background(), ep, GatewayOptions{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				err = g.Run(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			waitReleased(t, before)
		})
	}
}

// TestLogsHoldNoSecrets: at debug level, a gateway's logs of start-up and
// of requests carrying the auth token (in the query, as Rasa's clients
// send it, and as a header) never hold the token (issue 14).
func TestLogsHoldNoSecrets(t *testing.T) {
	const token = "s3cr3t-token-value"
	dir := t.TempDir()
	ep, err := config.Parse("endpoints.yml", []byte(startupYAML(dir)))
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := NewGateway(context.Background(), ep, GatewayOptions{AuthToken: token, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	h := g.Server.Handler()
	for _, target := range []string{"/events?token=" + token, "/events?token=wrong", "/conversations/c1/tracker?token=" + token, "/nothing?token=" + token} {
		for _, method := range []string{"GET", "POST"} {
			req := httptest.NewRequest(method, target, strings.NewReader(`{"sender_id":"s","event":"action","name":"a","timestamp":1}`))
			req.Header.Set("Authorization", "Bearer "+token)
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	if out := buf.String(); strings.Contains(out, token) || !strings.Contains(out, "path=/events") {
		t.Fatalf("logs hold the token, or requests were not logged:\n%s", out)
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
