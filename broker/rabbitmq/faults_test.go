package rabbitmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/testenv"
)

// behindProxy points c at a proxy in front of its RabbitMQ.
func behindProxy(t *testing.T, c Config, up bool) (Config, *proxy) {
	t.Helper()
	p := newProxy(t, c.Addr(), up)
	host, port, _ := net.SplitHostPort(p.addr())
	c.Host = host
	c.Port, _ = strconv.Atoi(port)
	return c, p
}

func TestOpenWithoutRabbitMQ(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")

	t.Run("raise_on_failure fails Open after connection_attempts", func(t *testing.T) {
		c := testConfig(t, url, 1, map[string]any{"connection_attempts": 3, "retry_delay_in_seconds": 0.01, "raise_on_failure": true})
		c, _ = behindProxy(t, c, false)
		_, err := Open(context.Background(), c, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), "3 attempts failed") {
			t.Fatalf("Open = %v, want an error after 3 attempts", err)
		}
	})

	t.Run("otherwise Publish waits for the background reconnect", func(t *testing.T) {
		c := testConfig(t, url, 1, map[string]any{"connection_attempts": 2, "retry_delay_in_seconds": 0.01})
		c, p := behindProxy(t, c, false)
		b := openBroker(t, c)
		if err := b.Ping(context.Background()); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("Ping while down = %v, want ErrNotConnected", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := b.Publish(ctx, brokertest.Seq("s", 0))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNotConnected) {
			t.Fatalf("Publish while down = %v, want DeadlineExceeded and ErrNotConnected", err)
		}
		waiting := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			waiting <- b.Publish(ctx, brokertest.Seq("s", 1), brokertest.Seq("s", 2))
		}()
		p.setUp(true)
		if err := <-waiting; err != nil {
			t.Fatalf("Publish waiting for the reconnect: %v", err)
		}
		if err := b.Ping(context.Background()); err != nil {
			t.Fatalf("Ping after the reconnect: %v", err)
		}
		got := readN(t, url, c.Queues[0], 2) // s-0 was abandoned by its caller
		if got[0].MessageId != "s-000001" || got[1].MessageId != "s-000002" {
			t.Fatalf("queue holds %s, %s; want s-000001, s-000002", got[0].MessageId, got[1].MessageId)
		}
	})

	t.Run("should_keep_unpublished_messages false fails Publish at once", func(t *testing.T) {
		c := testConfig(t, url, 1, map[string]any{"connection_attempts": 1, "should_keep_unpublished_messages": false})
		c, _ = behindProxy(t, c, false)
		b := openBroker(t, c)
		start := time.Now()
		err := b.Publish(context.Background(), brokertest.Seq("s", 0))
		if !errors.Is(err, ErrNotConnected) {
			t.Fatalf("Publish while down = %v, want ErrNotConnected", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Publish took %v to fail", d)
		}
	})
}

func TestCloseWhileDisconnected(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	c, p := behindProxy(t, c, true)
	b, err := Open(context.Background(), c, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.setUp(false)
	eventually(t, 10*time.Second, "the broker to notice the drop", func() bool { return b.Ping(context.Background()) != nil })
	published := make(chan error, 1)
	go func() { published <- b.Publish(context.Background(), brokertest.Seq("s", 0)) }()
	eventually(t, 10*time.Second, "the Publish call to wait in the backlog", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.backlog) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with an unconfirmable Publish in flight = %v, want DeadlineExceeded", err)
	}
	if err := <-published; !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish cut off by Close = %v, want ErrClosed", err)
	}
	if err := b.Close(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Close = %v, want the first one's result", err)
	}
}

// published records what a fault test's publishers got confirmed.
type published struct {
	mu      sync.Mutex
	acked   map[string]bool
	retries atomic.Int64
}

// publishAll publishes workers×each events in batches from concurrent
// publishers, retrying failed calls, and records the confirmed ones.
// progress is told the running total of confirmed events.
func publishAll(t *testing.T, b broker.Broker, workers, each, batch int, progress func(int64)) *published {
	t.Helper()
	res := &published{acked: map[string]bool{}}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender := fmt.Sprintf("pub-%d", w)
			for i := 0; i < each; i += batch {
				var evs []event.Event
				for j := i; j < min(i+batch, each); j++ {
					evs = append(evs, brokertest.Seq(sender, j))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				err := broker.PublishRetry(ctx, b, evs, broker.Backoff{Initial: 50 * time.Millisecond, Max: time.Second},
					func(int, error, time.Duration) { res.retries.Add(1) })
				cancel()
				if err != nil {
					errs <- fmt.Errorf("%s: %w", sender, err)
					return
				}
				res.mu.Lock()
				for _, ev := range evs {
					res.acked[ev.ID] = true
				}
				res.mu.Unlock()
				if progress != nil {
					progress(total.Add(int64(len(evs))))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("publisher gave up: %v", err)
	}
	return res
}

// checkQueue reads the queue and checks that every confirmed event is in
// it and that, per sender, first appearances keep publish order (a
// republished run may repeat earlier messages, but never skip ahead).
func checkQueue(t *testing.T, url, queue string, res *published) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var got []string
	var err error
	// RabbitMQ may still be starting its queues: retry the read.
	eventually(t, time.Minute, "reading the queue", func() bool {
		var ds []deliveryID
		ds, err = readIDs(ctx, url, queue, len(res.acked)-len(got))
		if err != nil {
			t.Logf("read: %v", err)
			return false
		}
		for _, d := range ds {
			got = append(got, string(d))
		}
		return len(got) >= len(res.acked)
	})
	count := map[string]int{}
	next := map[string]int{}
	for _, id := range got {
		count[id]++
		if count[id] > 1 {
			continue
		}
		sender, n := splitSeq(t, id)
		if n < next[sender] {
			t.Errorf("%s appears after %s-%06d: order broken", id, sender, next[sender]-1)
		}
		next[sender] = n + 1
	}
	missing, dups := 0, 0
	for id := range res.acked {
		if count[id] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("confirmed event %s is not in the queue", id)
			}
		}
	}
	for _, n := range count {
		dups += n - 1
	}
	t.Logf("%d events confirmed, %d messages in the queue, %d distinct, %d duplicates (republished after the failure), %d retried Publish calls",
		len(res.acked), len(got), len(count), dups, res.retries.Load())
	if missing > 0 {
		t.Fatalf("%d confirmed events lost", missing)
	}
}

type deliveryID string

// readIDs drains the queue, returning the message IDs.
func readIDs(ctx context.Context, url, queue string, n int) ([]deliveryID, error) {
	r := &reader{url: url, queue: queue}
	ds, err := r.read(ctx, n)
	out := make([]deliveryID, len(ds))
	for i, d := range ds {
		out[i] = deliveryID(d.MessageId)
	}
	return out, err
}

func splitSeq(t *testing.T, id string) (string, int) {
	t.Helper()
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '-' {
			n, err := strconv.Atoi(id[i+1:])
			if err != nil {
				break
			}
			return id[:i], n
		}
	}
	t.Fatalf("message id %q is not sender-seq", id)
	return "", 0
}

// TestConnectionDropsLoseNothing cuts the connection through a proxy three
// times while four publishers run.
func TestConnectionDropsLoseNothing(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	c := testConfig(t, url, 1, nil)
	c, p := behindProxy(t, c, true)
	b := openBroker(t, c)
	const workers, each, batch = 4, 2500, 50
	drops := []int64{2000, 5000, 8000}
	var dropped atomic.Int32
	var cutter sync.WaitGroup
	res := publishAll(t, b, workers, each, batch, func(total int64) {
		i := int(dropped.Load())
		if i < len(drops) && total >= drops[i] && dropped.CompareAndSwap(int32(i), int32(i+1)) {
			cutter.Add(1)
			go func() {
				defer cutter.Done()
				p.setUp(false)
				time.Sleep(200 * time.Millisecond) // the outage, not a wait for state
				p.setUp(true)
			}()
		}
	})
	cutter.Wait()
	if dropped.Load() != int32(len(drops)) {
		t.Fatalf("only %d of %d drops happened", dropped.Load(), len(drops))
	}
	checkQueue(t, url, c.Queues[0], res)
}

// TestRestartMidPublishLosesNothing restarts the real RabbitMQ while four
// publishers publish 20,000 events, then counts them in the queue.
func TestRestartMidPublishLosesNothing(t *testing.T) {
	url := testenv.Get(t, "PARLEY_AMQP_URL")
	if testing.Short() || os.Getenv("PARLEY_FAULT_TESTS") != "1" {
		// Restarting a service the other tests use belongs with the fault
		// tests, under their exclusive lock (make fault runs this test).
		t.Skip("restarts RabbitMQ: runs with PARLEY_FAULT_TESTS=1 (make fault)")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, url, 1, nil)
	b := openBroker(t, c)
	const workers, each, batch = 4, 5000, 100
	var (
		restarted sync.WaitGroup
		once      sync.Once
		confirmed atomic.Int64
		atDrop    atomic.Int64 // events confirmed when the broker saw RabbitMQ go
	)
	atDrop.Store(-1)
	restartErr := make(chan error, 1)
	res := publishAll(t, b, workers, each, batch, func(total int64) {
		confirmed.Store(total)
		if total < 3000 {
			return
		}
		once.Do(func() {
			restarted.Add(1)
			go func() {
				defer restarted.Done()
				t.Logf("restarting RabbitMQ after %d confirmed events", total)
				var out bytes.Buffer
				cmd := exec.Command(filepath.Join(root, "scripts", "services.sh"), "restart", "rabbitmq")
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					restartErr <- err
					return
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case err := <-exited:
						if err != nil {
							err = fmt.Errorf("services.sh restart rabbitmq: %w\n%s", err, out.String())
						}
						restartErr <- err
						return
					case <-tick.C:
						if atDrop.Load() < 0 && b.Ping(context.Background()) != nil {
							atDrop.Store(confirmed.Load())
						}
					}
				}
			}()
		})
	})
	restarted.Wait()
	select {
	case err := <-restartErr:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("RabbitMQ was never restarted")
	}
	switch n := atDrop.Load(); {
	case n < 0:
		t.Fatal("the broker never saw the connection drop")
	case n >= workers*each:
		t.Fatalf("RabbitMQ went down only after all %d events were confirmed: nothing was tested", n)
	default:
		t.Logf("connection dropped after %d of %d events were confirmed", n, workers*each)
	}
	// services.sh returns once RabbitMQ accepts connections again; the
	// broker has reconnected when Ping succeeds.
	eventually(t, time.Minute, "the broker to reconnect", func() bool { return b.Ping(context.Background()) == nil })
	if len(res.acked) != workers*each {
		t.Fatalf("%d of %d events confirmed", len(res.acked), workers*each)
	}
	checkQueue(t, url, c.Queues[0], res)
}

// repoRoot walks up from the working directory (the package's, under go
// test) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
