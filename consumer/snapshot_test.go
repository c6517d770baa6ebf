package consumer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/event"
)

func TestSnapshot(t *testing.T) {
	env := start(t, nil)
	var evs []event.Event
	for i := range 5 {
		ev, err := event.Parse([]byte(fmt.Sprintf(`{"sender_id": "s", "event": "user", "timestamp": %d, "text": "m%d"}`, i+1, i)))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	env.B.Produce(t, evs)
	if got := env.Handler.Snapshot(context.Background()); len(got) != 0 {
		t.Fatalf("no instances yet: %+v", got)
	}
	c := env.API.Create("g1", "b", map[string]any{"auto.offset.reset": "earliest", "auto.commit.enable": "false"})
	env.API.Create("g1", "a", nil)
	env.API.Create("g0", "x", nil)
	c.Subscribe(topic)
	recs := c.Records("timeout=5000")
	if len(recs) < 3 {
		t.Fatalf("read %d records", len(recs))
	}
	c.Commit(topic, map[int32]int64{0: recs[1].Offset})

	groups := env.Handler.Snapshot(context.Background())
	if len(groups) != 2 || groups[0].Group != "g0" || groups[1].Group != "g1" {
		t.Fatalf("groups: %+v", groups)
	}
	ins := groups[1].Instances
	if len(ins) != 2 || ins[0].Name != "a" || ins[1].Name != "b" || ins[0].Mode != "idle" || ins[1].Mode != "subscribed" || ins[1].AutoCommit {
		t.Fatalf("instances: %+v", ins)
	}
	if len(ins[1].Partitions) != 1 {
		t.Fatalf("partitions: %+v (err %q)", ins[1].Partitions, ins[1].Err)
	}
	p := ins[1].Partitions[0]
	end := recs[0].Offset + 5 // five events from the first offset
	if p.Topic != topic || p.Delivered != recs[len(recs)-1].Offset+1 || p.Committed != recs[1].Offset+1 || p.End != end || p.Lag != end-recs[1].Offset-1 {
		t.Errorf("partition: %+v; read %d..%d, committed after %d, end %d", p, recs[0].Offset, recs[len(recs)-1].Offset, recs[1].Offset, end)
	}
}
