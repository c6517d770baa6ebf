package file

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/fixtures"
)

func readLines(path string) ([]brokertest.Message, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []brokertest.Message
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if l[len(l)-1] != '\n' {
			return nil, fmt.Errorf("torn last line %q", l)
		}
		out = append(out, brokertest.Message{Body: l[:len(l)-1]})
	}
	return out, nil
}

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Harness{
		Features: brokertest.Features{GlobalOrder: true},
		Open: func(t *testing.T) brokertest.Destination {
			path := filepath.Join(t.TempDir(), "rasa_event.log")
			b, err := Open(Config{Path: path}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			return brokertest.Destination{Broker: b, Read: func(context.Context, int) ([]brokertest.Message, error) {
				return readLines(path)
			}}
		},
	})
}

// TestFileEqualsRasa checks the whole file against Rasa's output, and that
// a second broker appends instead of truncating.
func TestFileEqualsRasa(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	ctx := context.Background()
	lines := fixtures.Events()
	for _, half := range [][][]byte{lines[:40], lines[40:]} {
		b, err := Open(Config{Path: path}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range half {
			ev, err := event.Parse(l)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fixtures.RasaNDJSON()) {
		t.Fatalf("file differs from events.rasa.ndjson:\n%s", got)
	}
}

func TestConfig(t *testing.T) {
	ep, err := config.Parse("endpoints.yml", []byte("event_broker:\n  type: file\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(ep.EventBrokers[0])
	if err != nil || c.Path != DefaultPath || c.Format != event.FormatRasa {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	ep, err = config.Parse("endpoints.yml", []byte("event_broker:\n  type: file\n  path: x.log\n  format: yaml\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(ep.EventBrokers[0]); err == nil || err.Error() != "endpoints.yml:4: event_broker.format: must be rasa or compact" {
		t.Fatalf("got %v", err)
	}
}
