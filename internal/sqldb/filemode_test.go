package sqldb

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSQLiteFileModes: a database parley creates, and its -wal and -shm
// files, are 0640, never world-readable, whatever the umask lets through
// (issue 14).
func TestSQLiteFileModes(t *testing.T) {
	old := syscall.Umask(0o002) // a permissive umask must not widen them
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := Open(context.Background(), Options{Dialect: SQLite, DB: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != FileMode {
			t.Errorf("%s: mode %o, want %o", filepath.Base(p), m, FileMode)
		}
	}
}
