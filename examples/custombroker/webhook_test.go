package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
)

// TestConformance runs the custom broker through the same suite as the
// built-in ones.
func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Harness{
		Features: brokertest.Features{GlobalOrder: false},
		Open: func(t *testing.T) brokertest.Destination {
			var mu sync.Mutex
			var got []brokertest.Message
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sc := bufio.NewScanner(r.Body)
				sc.Buffer(nil, 1<<20)
				mu.Lock()
				for sc.Scan() {
					got = append(got, brokertest.Message{Body: append([]byte(nil), sc.Bytes()...)})
				}
				mu.Unlock()
			}))
			t.Cleanup(srv.Close)
			ep, err := config.Parse("endpoints.yml", []byte("event_broker:\n  type: webhook\n  url: "+srv.URL+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			open, err := broker.Configure(ep.EventBrokers[0])
			if err != nil {
				t.Fatal(err)
			}
			b, err := open(context.Background(), broker.Env{})
			if err != nil {
				t.Fatal(err)
			}
			return brokertest.Destination{Broker: b, Read: func(context.Context, int) ([]brokertest.Message, error) {
				mu.Lock()
				defer mu.Unlock()
				return append([]brokertest.Message(nil), got...), nil
			}}
		},
	})
}

func TestBadURL(t *testing.T) {
	ep, err := config.Parse("endpoints.yml", []byte("event_broker:\n  type: webhook\n  url: ftp://x\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = broker.Configure(ep.EventBrokers[0])
	if err == nil || err.Error() != `endpoints.yml:3: event_broker.url: must be an http:// or https:// URL, got "ftp://x"` {
		t.Fatalf("got %v", err)
	}
}

func init() { broker.Register("webhook", newWebhook) }
