package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

func TestBatchesAndOrder(t *testing.T) {
	for _, writers := range []int{1, 4} {
		var mu sync.Mutex
		var written []event.Event
		var writes atomic.Int64
		c := NewParallel(writers, 50, func(batch [][]event.Event) error {
			writes.Add(1)
			mu.Lock()
			defer mu.Unlock()
			for _, evs := range batch {
				written = append(written, evs...)
			}
			return nil
		})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i += 5 {
					var evs []event.Event
					for j := i; j < i+5; j++ {
						evs = append(evs, brokertest.Seq(string(rune('a'+g)), j))
					}
					if err := c.Submit(context.Background(), evs); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(written) != 800 {
			t.Fatalf("writers=%d: %d events written", writers, len(written))
		}
		next := map[string]int{}
		for _, ev := range written {
			v, _ := ev.Get("seq")
			f, _ := v.Float()
			if int(f) != next[ev.SenderID] {
				t.Fatalf("writers=%d: sender %s event %d after %d", writers, ev.SenderID, int(f), next[ev.SenderID]-1)
			}
			next[ev.SenderID]++
		}
		if err := c.Submit(context.Background(), written[:1]); !errors.Is(err, broker.ErrClosed) {
			t.Fatalf("Submit after Close = %v", err)
		}
	}
}

func TestWriteErrorReachesEveryCaller(t *testing.T) {
	boom := errors.New("disk full")
	c := New(10, func([][]event.Event) error { return boom })
	defer c.Close(context.Background())
	if err := c.Submit(context.Background(), []event.Event{brokertest.Seq("s", 0)}); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Submit(ctx, []event.Event{brokertest.Seq("s", 1)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}
