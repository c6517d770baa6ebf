package file

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/parleyhq/parley/broker/brokertest"
	"github.com/parleyhq/parley/event"
)

func seqs(from, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = brokertest.Seq("f", from+i)
	}
	return out
}

// A crash after a batch's fsync and before its position was recorded
// leaves lines the spool writes again: the reopened stream cuts them, so
// the file holds each event once.
func TestStreamCutsUnrecordedTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rasa_event.log")
	ctx := context.Background()
	// A file written before positions existed: kept whole.
	if err := os.WriteFile(path, []byte("{\"event\":\"old\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Open(Config{Path: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := b.OpenStream(ctx, "spool/file")
	if p, err := st.Position(ctx); err != nil || p != 0 {
		t.Fatalf("Position = %d, %v; want 0", p, err)
	}
	if err := st.PublishAt(ctx, 0, 10, seqs(0, 10)...); err != nil {
		t.Fatal(err)
	}
	// The crash: the next batch's lines are fsynced, its position is not.
	saved, _ := os.ReadFile(b.positionPath())
	if err := st.PublishAt(ctx, 10, 15, seqs(10, 5)...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.positionPath(), saved, 0o640); err != nil {
		t.Fatal(err)
	}
	b.Close(ctx)

	b, err = Open(Config{Path: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	st, _ = b.OpenStream(ctx, "spool/file")
	if p, err := st.Position(ctx); err != nil || p != 10 {
		t.Fatalf("Position after the crash = %d, %v; want 10", p, err)
	}
	if err := st.PublishAt(ctx, 10, 15, seqs(10, 5)...); err != nil {
		t.Fatal(err)
	}
	msgs, err := readLines(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 16 || string(msgs[0].Body) != `{"event":"old"}` {
		t.Fatalf("%d lines, first %q; want the old line and 15 events once each", len(msgs), msgs[0].Body)
	}
	for i, m := range msgs[1:] {
		ev, err := event.Parse(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := ev.Get("seq"); v.NumberText() != strconv.Itoa(i) {
			t.Fatalf("line %d holds seq %s, want %d", i+1, v.NumberText(), i)
		}
	}
	fi, err := os.Stat(b.positionPath())
	if err != nil || fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("position file: %v, mode %v (must not be world-accessible)", err, fi.Mode())
	}
}
