package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
)

func init() {
	broker.Register("Test-Recorder", func(sec *config.Section) (broker.Opener, error) {
		fail := sec.Bool("fail_open", false)
		sec.WarnUnused("test-recorder")
		return func(context.Context, broker.Env) (broker.Broker, error) {
			if fail {
				return nil, errors.New("cannot connect")
			}
			return brokertest.NewRecorder(), nil
		}, sec.Err()
	})
}

func sections(t *testing.T, yml string) []*config.Section {
	t.Helper()
	ep, err := config.Parse("endpoints.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return ep.EventBrokers
}

func TestUnknownTypeListsRegistered(t *testing.T) {
	_, err := broker.Configure(sections(t, "event_broker:\n  type: my.module.Broker\n")[0])
	if !errors.Is(err, broker.ErrUnknownType) {
		t.Fatalf("got %v, want ErrUnknownType", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `endpoints.yml:2: event_broker.type: unknown event broker type "my.module.Broker" (registered: `) ||
		!strings.Contains(msg, "test-recorder") || !strings.Contains(msg, "broker.Register") {
		t.Fatalf("message: %s", msg)
	}
}

func TestMissingTypeMeansPika(t *testing.T) {
	_, err := broker.Configure(sections(t, "event_broker:\n  host: localhost\n")[0])
	// pika is not linked into this test binary, so it is reported unknown,
	// which proves the lookup used "pika".
	if err == nil || !strings.HasPrefix(err.Error(), `endpoints.yml:2: event_broker: unknown event broker type: no type given, and Rasa's default "pika" is not registered`) {
		t.Fatalf("got %v", err)
	}
}

func TestOpenAllNamesAndFanout(t *testing.T) {
	secs := sections(t, "event_broker:\n  - type: test-recorder\n  - type: TEST-RECORDER\n")
	bs, err := broker.OpenAll(context.Background(), secs, broker.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Name != "test-recorder#1" || bs[1].Name != "test-recorder#2" {
		t.Fatalf("names: %v %v", bs[0].Name, bs[1].Name)
	}
	fan := broker.Fanout(bs)
	ev := brokertest.Seq("s", 1)
	if err := fan.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if got := b.Broker.(*brokertest.Recorder).Events(); len(got) != 1 || got[0].ID != ev.ID {
			t.Fatalf("%s got %v", b.Name, got)
		}
	}
	bs[1].Broker.(*brokertest.Recorder).FailNext = 1
	err = fan.Publish(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "test-recorder#2: brokertest: injected failure") {
		t.Fatalf("fan-out error should name the failing broker: %v", err)
	}
	if err := fan.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAllReportsEveryConfigError(t *testing.T) {
	secs := sections(t, "event_broker:\n  - type: nope\n  - type: test-recorder\n    fail_open: maybe\n")
	_, err := broker.OpenAll(context.Background(), secs, broker.Env{})
	if err == nil || !strings.Contains(err.Error(), "endpoints.yml:2: event_broker[0].type") || !strings.Contains(err.Error(), `endpoints.yml:4: event_broker[1].fail_open: "maybe" is not a boolean`) {
		t.Fatalf("got %v", err)
	}
	_, err = broker.OpenAll(context.Background(), sections(t, "event_broker:\n  type: test-recorder\n  fail_open: true\n"), broker.Env{})
	if err == nil || err.Error() != "open test-recorder broker (endpoints.yml:2): cannot connect" {
		t.Fatalf("got %v", err)
	}
}

func TestPublishRetry(t *testing.T) {
	rec := brokertest.NewRecorder()
	rec.FailNext = 3
	var attempts []int
	err := broker.PublishRetry(context.Background(), rec, []event.Event{brokertest.Seq("s", 0)}, broker.Backoff{Initial: time.Millisecond}, func(a int, _ error, _ time.Duration) { attempts = append(attempts, a) })
	if err != nil || len(attempts) != 3 || len(rec.Events()) != 1 {
		t.Fatalf("err=%v attempts=%v events=%d", err, attempts, len(rec.Events()))
	}
	rec.FailNext, rec.Err = 5, broker.Permanent(errors.New("too big"))
	err = broker.PublishRetry(context.Background(), rec, []event.Event{brokertest.Seq("s", 1)}, broker.Backoff{Initial: time.Millisecond}, nil)
	if !errors.Is(err, broker.ErrPermanent) || rec.FailNext != 4 {
		t.Fatalf("permanent error retried: %v, FailNext=%d", err, rec.FailNext)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	rec.FailNext, rec.Err = 1000, nil
	err = broker.PublishRetry(ctx, rec, []event.Event{brokertest.Seq("s", 2)}, broker.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline, got %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := broker.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 10: time.Second} {
		got := b.Delay(attempt)
		if got > want || got < want*8/10 {
			t.Errorf("Delay(%d) = %v, want within 20%% below %v", attempt, got, want)
		}
	}
}

func TestNameKey(t *testing.T) {
	secs := sections(t, "event_broker:\n  - type: test-recorder\n    name: primary\n  - type: test-recorder\n")
	if got := broker.Names(secs); got[0] != "primary" || got[1] != "test-recorder" {
		t.Fatalf("names %v", got)
	}
	if _, err := broker.ConfigureAll(secs); err != nil {
		t.Fatal(err)
	}
	if w := secs[0].Warnings(); len(w) != 0 {
		t.Fatalf("name reported as unknown: %v", w)
	}
	dup := sections(t, "event_broker:\n  - type: test-recorder\n    name: a\n  - type: test-recorder\n    name: a\n")
	if _, err := broker.ConfigureAll(dup); err == nil || !strings.Contains(err.Error(), `endpoints.yml:5: event_broker[1].name: broker name "a" is already used by event_broker[0]`) {
		t.Fatalf("got %v", err)
	}
	// A section with a bad key as well reports each error once.
	both := sections(t, "event_broker:\n  - type: test-recorder\n    name: a\n  - type: test-recorder\n    name: a\n    fail_open: maybe\n")
	_, err := broker.ConfigureAll(both)
	if err == nil || strings.Count(err.Error(), "already used") != 1 || strings.Count(err.Error(), "fail_open") != 1 {
		t.Fatalf("got %v", err)
	}
}
