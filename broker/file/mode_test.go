package file

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/parleyhq/parley/event"
)

// TestFileMode: the log the broker creates is 0640, never world-readable
// (issue 14).
func TestFileMode(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "rasa_event.log")
	b, err := Open(Config{Path: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := event.Parse([]byte(`{"event":"action","sender_id":"s","timestamp":1,"name":"action_listen"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o640 {
		t.Fatalf("mode %o, want 640", m)
	}
}
