package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/parleyhq/parley/spool"
)

// Bounds of what the dead-letter page reads of a file.
const (
	deadLetterTailBytes = 1 << 20 // parse at most the last MiB
	deadLetterShown     = 100
)

// deadLetterTail counts the entries of a dead-letter file (a streaming
// pass) and parses the last ones within its last MiB, newest first. A
// missing file has none.
func deadLetterTail(path string) (count int, last []spool.DeadLetter, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, nil, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	buf := make([]byte, 64<<10)
	for {
		n, err := br.Read(buf)
		count += bytes.Count(buf[:n], []byte{'\n'})
		if err == io.EOF {
			break
		}
		if err != nil {
			return count, nil, err
		}
	}
	start := max(size-deadLetterTailBytes, 0)
	tail := make([]byte, size-start)
	if _, err := f.ReadAt(tail, start); err != nil && err != io.EOF {
		return count, nil, err
	}
	if start > 0 {
		// Drop the partial first line.
		if i := bytes.IndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		}
	}
	lines := bytes.Split(bytes.TrimRight(tail, "\n"), []byte{'\n'})
	for i := len(lines) - 1; i >= 0 && len(last) < deadLetterShown; i-- {
		if len(lines[i]) == 0 {
			continue
		}
		var d spool.DeadLetter
		if json.Unmarshal(lines[i], &d) != nil {
			d = spool.DeadLetter{Error: "(unreadable dead-letter line)", EventRaw: string(lines[i])}
		}
		last = append(last, d)
	}
	return count, last, nil
}

// deadCounter counts dead-letter files' lines, remembering how far it
// counted: the file only grows, so a refresh reads only what was added
// since (a file that shrank, replaced by an operator, is counted again).
type deadCounter struct {
	mu    sync.Mutex
	files map[string]deadCount
}

type deadCount struct {
	size  int64
	lines int
}

func (c *deadCounter) count(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil {
		c.files = map[string]deadCount{}
	}
	prev := c.files[path]
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() < prev.size {
		prev = deadCount{}
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, prev.size, st.Size()-prev.size), 64<<10)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		prev.lines += bytes.Count(buf[:n], []byte{'\n'})
		prev.size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return prev.lines, err
		}
	}
	c.files[path] = prev
	return prev.lines, nil
}
