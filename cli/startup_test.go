package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/fixtures"
)

// TestStartupErrorsAreReported is issue 21: a part that cannot open makes
// each command fail with the part named, never panic (the panic's stack
// trace hid the error).
func TestStartupErrorsAreReported(t *testing.T) {
	dir := t.TempDir()
	// The file broker's directory is a file: its open fails.
	os.WriteFile(filepath.Join(dir, "notadir"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "rasa.db"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte(
		"event_broker:\n  type: file\n  path: notadir/rasa_event.log\ntracker_store:\n  type: sql\n  db: rasa.db\n"), 0o600)
	for _, args := range [][]string{
		{"publish"},
		{"export"},
		{"serve", "--addr", "127.0.0.1:0"},
	} {
		_, err := run(t, dir, fixtures.EventsNDJSON(), args...)
		if err == nil || !strings.Contains(err.Error(), "open file broker (endpoints.yml:2)") {
			t.Errorf("%v: err = %v, want the file broker's open named", args, err)
		}
	}

	// serve names the step of start-up that failed: here the spool,
	// whose directory cannot be made.
	os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte(
		"event_broker:\n  type: file\n  path: rasa_event.log\nspool:\n  dir: notadir/spool\n"), 0o600)
	if _, err := run(t, dir, nil, "serve", "--addr", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "start: open the spool: ") {
		t.Errorf("serve: err = %v, want the spool named", err)
	}

	// consume: nothing listens at the URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := run(t, dir, nil, "consume", "--url", "http://"+addr, "--no-commit"); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("consume: err = %v, want the unreachable server named", err)
	}
}
