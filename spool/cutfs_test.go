package spool

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cutFS is an in-memory file system that can lose power, in the spirit of
// LazyFS and CrashMonkey: it keeps what was fsynced apart from what was
// only written, and at the power cut, the image left on "disk" has every
// fsynced byte and, of the rest, nothing (cutDrop) or a random subset of
// the written pages, in any order (cutTorn). Directory entries (create,
// rename, remove) are durable once their directory is fsynced; of those
// not yet, a random prefix survives, as a journaling file system commits
// them in order.
//
// The cut comes at the cutAt-th mutating operation: it and every later
// one fail with EIO, as on a machine that went dark; reads go on.
type cutFS struct {
	mu    sync.Mutex
	dirs  map[string]bool
	names map[string]*inode // the namespace as the process sees it
	// durable is the namespace as of the last directory fsync; dirOps
	// are the changes since.
	durable map[string]*inode
	dirOps  []dirOp

	ops, cutAt int // cutAt < 0: never
	cut        bool
	// onSegmentSync, when set, is called at the start of a segment fsync
	// and returns a function called if it succeeds.
	onSegmentSync func() func()
}

// inode is a file: data is what reads see, base what was fsynced, ops the
// writes and truncations since.
type inode struct {
	data, base []byte
	ops        []fileOp
}

type fileOp struct {
	off      int64
	data     []byte
	truncate bool
}

type dirOp struct {
	name, to string // to: a rename's target
	ino      *inode // a create's file; nil for remove and rename
	remove   bool
}

type cutMode int

const (
	cutDrop cutMode = iota // every unsynced write is lost
	cutTorn                // unsynced pages survive at random, out of order
)

func newCutFS() *cutFS {
	return &cutFS{dirs: map[string]bool{}, names: map[string]*inode{}, durable: map[string]*inode{}, cutAt: -1}
}

// step counts a mutating operation and reports whether the power is on.
// Called with mu held.
func (c *cutFS) step() error {
	if c.cut {
		return syscall.EIO
	}
	c.ops++
	if c.cutAt >= 0 && c.ops >= c.cutAt {
		c.cut = true
		return syscall.EIO
	}
	return nil
}

// powerCut cuts the power now (if it was not already).
func (c *cutFS) powerCut() {
	c.mu.Lock()
	c.cut = true
	c.mu.Unlock()
}

func (c *cutFS) isCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// image returns what the disk holds after the cut, as a new cutFS with
// everything durable.
func (c *cutFS) image(rnd *rand.Rand, mode cutMode) *cutFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make(map[string]*inode, len(c.durable))
	for n, ino := range c.durable {
		names[n] = ino
	}
	keep := rnd.Intn(len(c.dirOps) + 1)
	for _, op := range c.dirOps[:keep] {
		applyDirOp(names, op)
	}
	out := newCutFS()
	for d := range c.dirs {
		out.dirs[d] = true
	}
	contents := map[*inode][]byte{}
	for n, ino := range names {
		data, ok := contents[ino]
		if !ok {
			data = ino.survivor(rnd, mode)
			contents[ino] = data
		}
		f := &inode{data: bytes.Clone(data), base: bytes.Clone(data)}
		out.names[n], out.durable[n] = f, f
	}
	return out
}

func applyDirOp(names map[string]*inode, op dirOp) {
	switch {
	case op.remove:
		delete(names, op.name)
	case op.to != "":
		if ino := names[op.name]; ino != nil {
			names[op.to] = ino
			delete(names, op.name)
		}
	default:
		names[op.name] = op.ino
	}
}

const cutPage = 4096

// survivor is the file's content after the cut.
func (ino *inode) survivor(rnd *rand.Rand, mode cutMode) []byte {
	data := bytes.Clone(ino.base)
	if mode == cutDrop {
		return data
	}
	for _, op := range ino.ops {
		if op.truncate {
			if rnd.Intn(2) == 0 {
				data = resize(data, op.off)
			}
			continue
		}
		for p := op.off; p < op.off+int64(len(op.data)); {
			end := min((p/cutPage+1)*cutPage, op.off+int64(len(op.data)))
			if rnd.Intn(2) == 0 {
				if int64(len(data)) < end {
					data = resize(data, end)
				}
				copy(data[p:end], op.data[p-op.off:end-op.off])
			}
			p = end
		}
	}
	return data
}

func resize(b []byte, n int64) []byte {
	if int64(len(b)) >= n {
		return b[:n]
	}
	return append(b, make([]byte, n-int64(len(b)))...)
}

func (c *cutFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dirs[name] {
		return &cutDir{c: c}, nil
	}
	ino := c.names[name]
	if ino == nil {
		if flag&os.O_CREATE == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if err := c.step(); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		ino = &inode{}
		c.names[name] = ino
		c.dirOps = append(c.dirOps, dirOp{name: name, ino: ino})
	} else if flag&os.O_TRUNC != 0 {
		if err := c.step(); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		ino.data = ino.data[:0:0]
		ino.ops = append(ino.ops, fileOp{truncate: true})
	}
	return &cutFile{c: c, ino: ino, name: name}, nil
}

func (c *cutFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names[name] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if err := c.step(); err != nil {
		return err
	}
	delete(c.names, name)
	c.dirOps = append(c.dirOps, dirOp{name: name, remove: true})
	return nil
}

func (c *cutFS) Rename(oldpath, newpath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino := c.names[oldpath]
	if ino == nil {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	if err := c.step(); err != nil {
		return err
	}
	c.names[newpath] = ino
	delete(c.names, oldpath)
	c.dirOps = append(c.dirOps, dirOp{name: oldpath, to: newpath})
	return nil
}

func (c *cutFS) ReadDir(name string) ([]fs.DirEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []fs.DirEntry
	for n, ino := range c.names {
		if filepath.Dir(n) == name {
			out = append(out, cutEntry{name: filepath.Base(n), size: int64(len(ino.data))})
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (c *cutFS) MkdirAll(path string, perm fs.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirs[path] = true
	return nil
}

// files returns the current content of every file, for debugging.
func (c *cutFS) files() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]byte{}
	for n, ino := range c.names {
		out[n] = bytes.Clone(ino.data)
	}
	return out
}

type cutFile struct {
	c    *cutFS
	ino  *inode
	name string
}

func (f *cutFile) ReadAt(b []byte, off int64) (int, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.ino.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *cutFile) WriteAt(b []byte, off int64) (int, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if err := f.c.step(); err != nil {
		return 0, err
	}
	if end := off + int64(len(b)); end > int64(len(f.ino.data)) {
		f.ino.data = resize(f.ino.data, end)
	}
	copy(f.ino.data[off:], b)
	f.ino.ops = append(f.ino.ops, fileOp{off: off, data: bytes.Clone(b)})
	return len(b), nil
}

func (f *cutFile) Truncate(size int64) error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if err := f.c.step(); err != nil {
		return err
	}
	f.ino.data = resize(f.ino.data, size)
	f.ino.ops = append(f.ino.ops, fileOp{off: size, truncate: true})
	return nil
}

func (f *cutFile) Sync() error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	var done func()
	if f.c.onSegmentSync != nil && strings.HasSuffix(f.name, segmentExt) {
		done = f.c.onSegmentSync()
	}
	if err := f.c.step(); err != nil {
		return err
	}
	f.ino.base = bytes.Clone(f.ino.data)
	f.ino.ops = nil
	if done != nil {
		done()
	}
	return nil
}

func (f *cutFile) Stat() (fs.FileInfo, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	return cutEntry{name: filepath.Base(f.name), size: int64(len(f.ino.data))}, nil
}

func (f *cutFile) Close() error { return nil }

// cutDir is an open directory: its fsync makes the namespace durable.
type cutDir struct{ c *cutFS }

func (d *cutDir) Sync() error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	if err := d.c.step(); err != nil {
		return err
	}
	d.c.durable = make(map[string]*inode, len(d.c.names))
	for n, ino := range d.c.names {
		d.c.durable[n] = ino
	}
	d.c.dirOps = nil
	return nil
}
func (d *cutDir) ReadAt([]byte, int64) (int, error)  { return 0, errors.New("is a directory") }
func (d *cutDir) WriteAt([]byte, int64) (int, error) { return 0, errors.New("is a directory") }
func (d *cutDir) Truncate(int64) error               { return errors.New("is a directory") }
func (d *cutDir) Stat() (fs.FileInfo, error)         { return cutEntry{dir: true}, nil }
func (d *cutDir) Close() error                       { return nil }

// cutEntry is both the fs.DirEntry and the fs.FileInfo of a file.
type cutEntry struct {
	name string
	size int64
	dir  bool
}

func (e cutEntry) Name() string { return e.name }
func (e cutEntry) IsDir() bool  { return e.dir }
func (e cutEntry) Type() fs.FileMode {
	if e.dir {
		return fs.ModeDir
	}
	return 0
}
func (e cutEntry) Info() (fs.FileInfo, error) { return e, nil }
func (e cutEntry) Size() int64                { return e.size }
func (e cutEntry) Mode() fs.FileMode          { return e.Type() | 0o640 }
func (e cutEntry) ModTime() time.Time         { return time.Time{} }
func (e cutEntry) Sys() any                   { return nil }
