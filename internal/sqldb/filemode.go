package sqldb

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// FileMode is the mode of the SQLite databases parley creates: readable
// by the group (a Rasa running as another user of the group can share
// rasa.db), never by everyone. SQLite itself would create 0644, and gives
// the -wal and -shm files the database's own mode.
const FileMode fs.FileMode = 0o640

// createSQLiteFile creates the database file with FileMode when it does
// not exist yet; an existing file keeps the mode its owner gave it.
func createSQLiteFile(path string) error {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
