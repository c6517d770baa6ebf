package rabbitmq_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker/rabbitmq"
	"github.com/parleyhq/parley/cli"
	"github.com/parleyhq/parley/internal/fixtures"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestCLIPublishWithRasaDocsEndpoints runs `parley publish` on the pika
// example of Rasa's event broker docs ("Example Configurations"), with this
// RabbitMQ's credentials and two queues, and checks the bytes in each queue.
func TestCLIPublishWithRasaDocsEndpoints(t *testing.T) {
	amqpURL := testenv.Get(t, "PARLEY_AMQP_URL")
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	exchange := rabbitmq.UniqueName(t, "exchange")
	queues := []string{rabbitmq.UniqueName(t, "queue-1"), rabbitmq.UniqueName(t, "queue-2")}
	rabbitmq.Cleanup(t, amqpURL, exchange, queues...)

	endpoints := fmt.Sprintf(`event_broker:
  type: pika
  url: %s
  username: %s
  password: %s
  queues:
  - %s
  # you may supply more than one queue to publish to
  - %s
  exchange_name: %s
`, u.Hostname(), u.User.Username(), password, queues[0], queues[1], exchange)
	dir := t.TempDir()
	path := filepath.Join(dir, "endpoints.yml")
	if err := os.WriteFile(path, []byte(endpoints), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := cli.New()
	var out, errOut bytes.Buffer
	cmd.SetArgs([]string{"--endpoints", path, "publish"})
	cmd.SetIn(bytes.NewReader(fixtures.EventsNDJSON()))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("parley publish: %v\nstderr: %s", err, errOut.String())
	}
	want := fixtures.RasaBytes()
	if !strings.Contains(out.String(), fmt.Sprintf("published %d events to pika", len(want))) {
		t.Errorf("output %q does not report %d events published to pika", out.String(), len(want))
	}
	for _, q := range queues {
		got, err := rabbitmq.ReadBodies(ctx, amqpURL, q, len(want))
		if err != nil {
			t.Fatalf("read %s: %v", q, err)
		}
		if len(got) != len(want) {
			t.Fatalf("queue %s holds %d messages, want %d", q, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("queue %s message %d:\n got %s\nwant %s", q, i, got[i], want[i])
			}
		}
	}
}
