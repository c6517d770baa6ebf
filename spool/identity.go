package spool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// identityFile holds the spool's identity: 32 hex digits drawn at random
// when the spool directory is first used. Together with a broker's name it
// names the spool's stream at that broker's destination (an SQL position
// row, a Kafka transactional id), so that several parley nodes, each with
// its own spool, can write one table or topic exactly once. It never
// changes: a new identity is a new stream, which starts from the spool's
// cursor instead of the destination's position.
const identityFile = "identity"

// loadIdentity reads the spool's identity, creating it if the directory
// has none. The new file is fsynced whatever the spool's fsync policy: it
// is written once, and a power cut must not leave it renamed but empty.
func loadIdentity(fsys fileSystem, dir string) (string, error) {
	path := filepath.Join(dir, identityFile)
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	switch {
	case err == nil:
		defer f.Close()
		data, err := readAll(f)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", path, err)
		}
		id := strings.TrimSpace(string(data))
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			return "", fmt.Errorf("%s holds %q, not a spool identity (32 hex digits): restore it, or delete it to give the spool a new identity (its streams at exactly-once brokers then start from the spool's cursors)", path, shorten(id, 40))
		}
		return id, nil
	case errors.Is(err, fs.ErrNotExist):
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id := hex.EncodeToString(b[:])
		if err := writeFileAtomic(fsys, path, []byte(id+"\n"), true); err != nil {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
		return id, nil
	default:
		return "", fmt.Errorf("open %s: %w", path, err)
	}
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Identity returns the spool's identity (see docs/spool.md): the first
// part of its streams' names at exactly-once brokers.
func (s *Spool) Identity() string { return s.id }

// streamID names the spool's stream at the broker called name.
func (s *Spool) streamID(name string) string { return s.id + "/" + name }
