package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/idempotency"
)

// keyIndex holds the Idempotency-Keys of recent batches and their recorded
// outcomes, for POST /events. A key is durable exactly when its events
// are, because it is written in their batch's commit marker; the index is
// rebuilt from the markers at start-up, plus the keys file for keys whose
// segments retention has removed. It is bounded in count (oldest out
// first) and in time (older than the window: gone).
type keyIndex struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	byKey map[string]*keyEntry
	order []*keyEntry // oldest first; entries replaced or evicted are skipped
	head  int
	// pending are keys whose batch is queued for the writer: a request
	// with the same key waits for it instead of appending again.
	pending map[string]chan struct{}
}

type keyEntry struct {
	key     string
	last    uint64 // seq of the request's last event
	outcome []byte // idempotency.Outcome binary form
	created time.Time
	gone    bool
}

func newKeyIndex(window time.Duration, max int) *keyIndex {
	return &keyIndex{window: window, max: max, byKey: map[string]*keyEntry{}, pending: map[string]chan struct{}{}}
}

// add records keys (in seq order) after their batch was written.
func (x *keyIndex) add(keys []markedKey, now time.Time) {
	for _, k := range keys {
		var o idempotency.Outcome
		if err := o.UnmarshalBinary(k.outcome); err != nil || o.Expired(now, x.window) {
			continue
		}
		if old := x.byKey[k.key]; old != nil {
			old.gone = true
		}
		e := &keyEntry{key: k.key, last: k.last, outcome: k.outcome, created: o.Created}
		x.byKey[k.key] = e
		x.order = append(x.order, e)
	}
	x.evict(now)
}

// evict drops the oldest entries beyond max and those past the window.
func (x *keyIndex) evict(now time.Time) {
	for x.head < len(x.order) {
		e := x.order[x.head]
		if !e.gone && len(x.byKey) <= x.max && now.Sub(e.created) <= x.window {
			break
		}
		if !e.gone {
			delete(x.byKey, e.key)
		}
		x.order[x.head] = nil
		x.head++
	}
	if x.head > 1024 && x.head > len(x.order)/2 {
		x.order = append([]*keyEntry(nil), x.order[x.head:]...)
		x.head = 0
	}
}

// commit is the writer telling that a batch with keys is on disk.
func (x *keyIndex) commit(keys []markedKey) {
	if len(keys) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.add(keys, time.Now())
	for _, k := range keys {
		x.release(k.key)
	}
}

// abort is the writer telling that a keyed request failed.
func (x *keyIndex) abort(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.release(key)
}

func (x *keyIndex) release(key string) {
	if ch := x.pending[key]; ch != nil {
		close(ch)
		delete(x.pending, key)
	}
}

// lookup returns the recorded outcome of key, if any and not expired.
func (x *keyIndex) lookup(key string, now time.Time) (idempotency.Outcome, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.lookupLocked(key, now)
}

func (x *keyIndex) lookupLocked(key string, now time.Time) (idempotency.Outcome, bool) {
	e := x.byKey[key]
	if e == nil || now.Sub(e.created) > x.window {
		return idempotency.Outcome{}, false
	}
	var o idempotency.Outcome
	if err := o.UnmarshalBinary(e.outcome); err != nil {
		return idempotency.Outcome{}, false
	}
	return o, true
}

// claim returns key's recorded outcome, or reserves the key for an append
// (done true), waiting first for an append of the same key in flight.
func (x *keyIndex) claim(ctx context.Context, key string) (o idempotency.Outcome, found bool, err error) {
	for {
		x.mu.Lock()
		if o, ok := x.lookupLocked(key, time.Now()); ok {
			x.mu.Unlock()
			return o, true, nil
		}
		ch := x.pending[key]
		if ch == nil {
			x.pending[key] = make(chan struct{})
			x.mu.Unlock()
			return idempotency.Outcome{}, false, nil
		}
		x.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return idempotency.Outcome{}, false, ctx.Err()
		}
	}
}

// below returns the live entries whose events are below seq, oldest
// first: those in segments about to be removed.
func (x *keyIndex) below(seq uint64) []markedKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.evict(time.Now())
	var out []markedKey
	for _, e := range x.order[x.head:] {
		if !e.gone && e.last < seq {
			out = append(out, markedKey{key: e.key, last: e.last, outcome: e.outcome})
		}
	}
	return out
}

func (x *keyIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byKey)
}

// AppendIdempotent is Append with an Idempotency-Key: the key and out (the
// answer to give the request) are recorded in the commit marker of the
// events' batch, so both are on disk or neither. If key was recorded
// within the idempotency window, nothing is appended and the recorded
// outcome is returned with replayed true; the caller checks its
// fingerprint (a different request under the same key gets 422). A
// request whose key is being appended by another waits for that one.
//
// The key is held in the spool's index until it is older than
// idempotency_window or idempotency_max_keys newer keys have arrived.
func (s *Spool) AppendIdempotent(ctx context.Context, key string, out idempotency.Outcome, evs ...event.Event) (rec idempotency.Outcome, replayed bool, err error) {
	if err := idempotency.Validate(key); err != nil {
		return rec, false, err
	}
	outcome, err := out.MarshalBinary()
	if err != nil {
		return rec, false, err
	}
	rec, found, err := s.keys.claim(ctx, key)
	if err != nil || found {
		return rec, found, err
	}
	if _, err := s.append(ctx, evs, key, outcome); err != nil {
		return rec, false, err
	}
	return out, false, nil
}

// PublishIdempotent is AppendIdempotent, for the HTTP API.
func (s *Spool) PublishIdempotent(ctx context.Context, key string, out idempotency.Outcome, evs ...event.Event) (idempotency.Outcome, bool, error) {
	return s.AppendIdempotent(ctx, key, out, evs...)
}

// LookupIdempotent returns the outcome recorded for key, if it is within
// the idempotency window.
func (s *Spool) LookupIdempotent(key string) (idempotency.Outcome, bool) {
	return s.keys.lookup(key, time.Now())
}

// keysFile keeps the idempotency keys of segments retention removed, so a
// restart still knows them for the rest of their window:
//
//	magic  "PLYKEY01"
//	count  uvarint, then per key as in a commit marker: key, last, outcome
//	crc    uint32 LE, CRC-32C of everything before it
//
// It is replaced atomically before the segments are removed.
const (
	keysFile  = "idempotency.keys"
	keysMagic = "PLYKEY01"
)

func encodeKeys(keys []markedKey) []byte {
	b := append([]byte(nil), keysMagic...)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendBytes(b, k.key)
		b = binary.AppendUvarint(b, k.last)
		b = binary.AppendUvarint(b, uint64(len(k.outcome)))
		b = append(b, k.outcome...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeKeys(b []byte) ([]markedKey, error) {
	if len(b) < len(keysMagic)+4 || string(b[:len(keysMagic)]) != keysMagic {
		return nil, errors.New("not a keys file")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	d := decoder{b: body[len(keysMagic):]}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return nil, errBadFrame
	}
	keys := make([]markedKey, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := markedKey{key: string(d.bytes())}
		k.last = d.uvarint()
		k.outcome = append([]byte(nil), d.bytes()...)
		keys = append(keys, k)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadFrame
	}
	return keys, nil
}

// readKeysFile returns the keys file's content; none when it is missing.
// A damaged file loses its keys (a retry of them would be accepted again),
// which is logged, not fatal.
func (s *Spool) readKeysFile() []markedKey {
	f, err := s.fsys.OpenFile(filepath.Join(s.dir, keysFile), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		defer f.Close()
		var data []byte
		if data, err = readAll(f); err == nil {
			var keys []markedKey
			if keys, err = decodeKeys(data); err == nil {
				s.keysFileExists = true
				return keys
			}
		}
	}
	s.log.Error("spool: idempotency keys file unreadable; retries of requests whose events were already delivered and removed may be accepted again",
		"file", filepath.Join(s.dir, keysFile), "err", err)
	return nil
}

// saveKeys writes the keys of segments about to be removed (events below
// seq) to the keys file. Called with ckptMu held, before the removal.
func (s *Spool) saveKeys(seq uint64) error {
	keys := s.keys.below(seq)
	if len(keys) == 0 && !s.keysFileExists {
		return nil
	}
	if err := writeFileAtomic(s.fsys, filepath.Join(s.dir, keysFile), encodeKeys(keys), true); err != nil {
		return fmt.Errorf("spool: write %s: %w", keysFile, err)
	}
	s.keysFileExists = true
	return nil
}
