"""The on-disk buffer: events parley has not accepted yet, in publish order.

One SQLite file per Rasa process, created 0600 (it holds conversation
data). Each row is one event: its publish sequence number, the
Idempotency-Key of the batch it is sent in, and its exact JSON bytes. A
batch is the run of rows from the oldest that share its key, so a batch
retried after a restart is the same batch with the same key.

Several Rasa processes may share a buffer directory: each takes the first
buffer-N.sqlite whose lock file it can lock, so a restarted process finds
(and drains) the buffer its predecessor left.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import List, Optional, Sequence, Tuple

try:
    import fcntl
except ImportError:  # Windows: one process per buffer directory, unchecked.
    fcntl = None  # type: ignore[assignment]

Row = Tuple[int, str, bytes]  # (seq, batch key, event JSON)

_MAX_SLOTS = 64


class BufferFull(Exception):
    """Raised (with how many rows were kept) when rows did not all fit."""

    def __init__(self, kept: int, dropped: int) -> None:
        super().__init__(f"buffer full: kept {kept}, dropped {dropped} events")
        self.kept = kept
        self.dropped = dropped


class DiskBuffer:
    """A bounded FIFO of events on disk. Thread-safe."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._lock_fd, slot = _take_slot(directory)
        self.path = os.path.join(directory, f"buffer-{slot}.sqlite")
        # Created 0600 before SQLite opens it; SQLite gives its journal and
        # WAL files the database file's permissions.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events ("
            " seq INTEGER PRIMARY KEY, batch_key TEXT NOT NULL, data BLOB NOT NULL)"
        )
        n, size, top = self._db.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0), coalesce(max(seq), 0) FROM events"
        ).fetchone()
        self.events, self.bytes, self.max_seq = int(n), int(size), int(top)

    def __len__(self) -> int:
        return self.events

    def put(self, rows: Sequence[Row]) -> None:
        """Stores rows; raises BufferFull after storing those that fit."""
        if not rows:
            return
        with self._lock:
            kept: List[Row] = []
            size = self.bytes
            for row in rows:
                if size + len(row[2]) > self.max_bytes:
                    break
                size += len(row[2])
                kept.append(row)
            if kept:
                added = [0, 0]
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    for seq, key, data in kept:
                        # IGNORE: a batch whose send timed out may be stored
                        # by close() and by the sender both.
                        cur = self._db.execute(
                            "INSERT OR IGNORE INTO events(seq, batch_key, data) VALUES (?, ?, ?)",
                            (seq, key, sqlite3.Binary(data)),
                        )
                        if cur.rowcount == 1:
                            added[0] += 1
                            added[1] += len(data)
                            self.max_seq = max(self.max_seq, seq)
                self.events += added[0]
                self.bytes += added[1]
            if len(kept) < len(rows):
                raise BufferFull(len(kept), len(rows) - len(kept))

    def first_batch(self, limit: int) -> List[Row]:
        """The oldest batch: the oldest rows sharing the oldest row's key."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, batch_key, data FROM events ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        if not rows:
            return []
        key = rows[0][1]
        out = []
        for seq, k, data in rows:
            if k != key:
                break
            out.append((seq, k, bytes(data)))
        return out

    def remove(self, rows: Sequence[Row]) -> None:
        with self._lock:
            gone = [0, 0]
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for seq, _, data in rows:
                    if self._db.execute("DELETE FROM events WHERE seq = ?", (seq,)).rowcount:
                        gone[0] += 1
                        gone[1] += len(data)
            self.events -= gone[0]
            self.bytes -= gone[1]

    def rekey(self, groups: Sequence[Tuple[str, Sequence[int]]]) -> None:
        """Gives each group of rows a new batch key (a batch changed)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for key, seqs in groups:
                self._db.executemany(
                    "UPDATE events SET batch_key = ? WHERE seq = ?", [(key, s) for s in seqs]
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _take_slot(directory: str) -> Tuple[Optional[int], int]:
    if fcntl is None:
        return None, 0
    for slot in range(_MAX_SLOTS):
        fd = os.open(os.path.join(directory, f"buffer-{slot}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd, slot
        except OSError:
            os.close(fd)
    raise RuntimeError(
        f"parley_rasa: all {_MAX_SLOTS} buffers in {directory} are in use by other processes"
    )
