package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// A segment file is a 16-byte header followed by records (see record.go):
//
//	magic  "PLYSPL02" (the 02 is the format version)
//	base   uint64 LE, the seq of its first record, also its file name
//
// Format 02 ends every group-commit batch with a commit marker (marker.go);
// format 01, written before markers existed, has none. Segments of both
// formats are read; new ones are always 02, and a 01 segment is never
// appended to (Open starts a new segment after it).
//
// Segments are named by base seq, zero-padded so names sort in log order:
// 00000000000000001234.seg.
const (
	segmentMagic      = "PLYSPL02"
	segmentMagicV1    = "PLYSPL01"
	segmentHeaderSize = 16
	segmentExt        = ".seg"
	maxSegmentSize    = 1 << 30
)

// segment is one file of the log.
type segment struct {
	base uint64
	path string
	// end is the offset up to which the file holds committed records:
	// readers never look past it. It grows while the segment is active.
	// For segments found at start-up other than the last, it is the file
	// size; readers check every record anyway.
	end atomic.Int64
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentExt) }

// segmentKeysPath is where a sealed segment's idempotency keys are saved.
func segmentKeysPath(segPath string) string {
	return strings.TrimSuffix(segPath, segmentExt) + ".keys"
}

func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

func segmentHeader(base uint64) []byte { return segmentHeaderVersion(base, 2) }

func segmentHeaderVersion(base uint64, version int) []byte {
	h := make([]byte, 0, segmentHeaderSize)
	if version == 1 {
		h = append(h, segmentMagicV1...)
	} else {
		h = append(h, segmentMagic...)
	}
	return binary.LittleEndian.AppendUint64(h, base)
}

// headerVersion returns the format of a segment whose content starts with
// b, or 0 if the header is not one of base's.
func headerVersion(b []byte, base uint64) int {
	switch {
	case len(b) < segmentHeaderSize:
		return 0
	case bytes.Equal(b[:segmentHeaderSize], segmentHeaderVersion(base, 2)):
		return 2
	case bytes.Equal(b[:segmentHeaderSize], segmentHeaderVersion(base, 1)):
		return 1
	}
	return 0
}

// listSegments returns dir's segments sorted by base, with end set to
// their size.
func listSegments(fsys fileSystem, dir string) ([]*segment, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []*segment
	for _, e := range entries {
		base, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		s := &segment{base: base, path: filepath.Join(dir, e.Name())}
		s.end.Store(info.Size())
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b *segment) int {
		switch {
		case a.base < b.base:
			return -1
		case a.base > b.base:
			return 1
		}
		return 0
	})
	return segs, nil
}

// createSegment creates the segment starting at base and returns it open
// for writing, its header written and fsynced with its directory entry
// (under every fsync policy: a few fsyncs per segment, so that recovery
// never meets a torn header it would have to call corruption).
func createSegment(fsys fileSystem, dir string, base uint64) (*segment, file, error) {
	s := &segment{base: base, path: filepath.Join(dir, segmentName(base))}
	f, err := fsys.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	fail := func(err error) (*segment, file, error) {
		f.Close()
		_ = fsys.Remove(s.path)
		return nil, nil, fmt.Errorf("create segment %s: %w", s.path, err)
	}
	if _, err := f.WriteAt(segmentHeader(base), 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := syncDir(fsys, dir); err != nil {
		return fail(err)
	}
	s.end.Store(segmentHeaderSize)
	return s, f, nil
}

// readAll reads a whole file.
func readAll(f file) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, info.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b[:n], nil
}
