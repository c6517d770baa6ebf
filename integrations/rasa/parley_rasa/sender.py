"""The queue and the background thread that sends it to parley in batches.

Every event gets a sequence number when Rasa publishes it; the thread sends
strictly in that order (so per sender too), one batch at a time. While the
on-disk buffer holds anything, new events go behind it on disk, so order
holds across outages and restarts. A batch that failed keeps its
Idempotency-Key on disk until parley accepts it.
"""

from __future__ import annotations

import collections
import json
import logging
import sqlite3
import threading
import time
import uuid
from typing import Deque, Dict, List, Optional, Set, Tuple

from .buffer import BufferFull, DiskBuffer, Row
from .client import Client, Response
from .config import Config

logger = logging.getLogger("parley_rasa")

_RETRYABLE_4XX = {408, 425, 429}
# Wrong URL or token: the events are fine, so they wait on disk for the
# configuration to be fixed (logged as errors) instead of being dropped.
_CONFIG_4XX = {401, 403, 404, 405}
_FULL_LOG_EVERY = 5.0
_SEND, _DISK, _STORE, _AGAIN, _STOP = "send", "disk", "store", "again", "stop"


def new_key() -> str:
    return "parley-rasa-" + uuid.uuid4().hex


class Sender:
    """Owns the memory queue, the disk buffer and the thread that drains both."""

    def __init__(self, cfg: Config, client: Optional[Client] = None) -> None:
        self.cfg = cfg
        self.client = client or Client(cfg)
        self.disk = DiskBuffer(cfg.buffer_dir, cfg.buffer_max_bytes)
        self._cond = threading.Condition()
        self._mem: Deque[Tuple[int, bytes]] = collections.deque()
        self._first_at = 0.0  # monotonic time the oldest queued event arrived
        self._seq = self.disk.max_seq
        self._inflight: List[Row] = []
        self._closing = False
        self._deadline = 0.0
        self._closed = False
        self._failing_since: Optional[float] = None
        self._retry_at = 0.0
        self._close_tried = False
        # Keys of batches that may have reached parley without an answer.
        self._unknown: Set[str] = set()
        self._last_full_log = 0.0
        self._dropped_since_log = 0
        self.stats: Dict[str, int] = collections.Counter()
        self._stats_lock = threading.Lock()
        if len(self.disk):
            logger.info(
                "%d events from an earlier run wait in %s; sending them first",
                len(self.disk),
                self.disk.path,
            )
        self._thread = threading.Thread(target=self._run, name="parley-rasa-sender", daemon=True)
        self._thread.start()

    # -- called by Rasa's thread -------------------------------------------

    def put(self, line: bytes) -> None:
        """Queues one serialized event; never waits for parley."""
        with self._cond:
            self._seq += 1
            self.count("published", 1)
            if self._closed:
                # Rasa publishes nothing after close(); if something does,
                # say so rather than lose it quietly.
                self.count("dropped_after_close", 1)
                logger.error("an event was published after close(); dropped")
                return
            first = not self._mem
            if first:
                self._first_at = time.monotonic()
            self._mem.append((self._seq, line))
            if len(self._mem) > self.cfg.queue_size:
                # parley is slow: keep memory bounded, keep order (the disk
                # is drained before memory).
                self._spill()
            if first or len(self._mem) >= self.cfg.batch_size:
                self._cond.notify_all()

    def count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def is_alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def close(self, timeout: float) -> None:
        """Sends what it can within timeout, stores the rest on disk."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout + 1.0)
        with self._cond:
            self._closed = True
            # The thread is stuck in a request, or died: keep its batch and
            # the queue. A batch parley did get is recognised by its key.
            if self._inflight:
                self._store(self._inflight)
                self._inflight = []
            self._spill()
        self.client.close()
        self.disk.close()
        logger.info("closed; %s", self.summary())

    def flush_to_disk(self) -> None:
        """At interpreter exit without close(): keep the queue on disk."""
        with self._cond:
            if self._closed:
                return
            if self._inflight:
                self._store(self._inflight)
            self._spill()

    def counters(self) -> Dict[str, int]:
        with self._stats_lock:
            s = dict(self.stats)
        s["buffered"] = len(self.disk)
        return s

    def summary(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.counters().items()))

    # -- the sender thread --------------------------------------------------

    def _run(self) -> None:
        delay = 0.0
        while True:
            try:
                with self._cond:
                    step, rows = self._next_step()
                    if step == _STOP:
                        return
                    self._inflight = rows  # close() keeps them if it cannot wait
                # Disk writes and requests happen without the lock, so that
                # publish never waits for them.
                if step in (_STORE, _DISK):
                    self._store(rows)
                    if step == _STORE:
                        continue
                    rows = self.disk.first_batch(self.cfg.batch_size)
                    with self._cond:
                        self._inflight = rows
                if not rows:
                    continue
                resp = self._send(rows)
                delay = self._handle(rows, step == _DISK, resp, delay)
                with self._cond:
                    self._inflight = []
                    self._retry_at = time.monotonic() + delay
            except Exception:
                if self._closed:
                    return  # close() gave up waiting and kept the batch
                # A bug or a broken disk must not stop delivery for good, nor
                # lose the batch at hand (stored again, it is a no-op).
                logger.exception("sender error; retrying")
                with self._cond:
                    rows, self._inflight = self._inflight, []
                    self._retry_at = time.monotonic() + self.cfg.retry_max_delay
                self._store(rows)

    def _next_step(self) -> Tuple[str, List[Row]]:
        """What to do next, waiting for it if need be. Lock held.

        _SEND: send rows, taken from memory. _DISK: store rows (the memory
        queue) behind the disk's, then send the disk's oldest batch.
        _STORE: store rows. _AGAIN: look again. _STOP: close.
        """
        now = time.monotonic()
        if self._closing:
            if now >= self._deadline:
                return _STOP, []  # out of time: the rest waits on disk
            if self._failing_since is not None:
                if self._close_tried:
                    return _STOP, []  # parley is still down
                # parley may be back: one attempt now, not after the delay.
                self._close_tried = True
                self._retry_at = 0.0
        if now < self._retry_at:
            if self._failing_since is not None and self._mem:
                return _STORE, self._take_all()  # on disk while parley is down
            self._cond.wait(self._retry_at - now)
            return _AGAIN, []
        if len(self.disk):
            return _DISK, self._take_all()
        if not self._mem:
            if self._closing:
                return _STOP, []
            self._cond.wait()
            return _AGAIN, []
        wait = self._first_at + self.cfg.linger - now
        if len(self._mem) < self.cfg.batch_size and wait > 0 and not self._closing:
            self._cond.wait(wait)
            return _AGAIN, []
        return _SEND, self._take()

    def _take(self) -> List[Row]:
        key = new_key()
        out: List[Row] = []
        size = 0
        while self._mem and len(out) < self.cfg.batch_size:
            seq, line = self._mem[0]
            if out and size + len(line) + 1 > self.cfg.max_batch_bytes:
                break
            self._mem.popleft()
            out.append((seq, key, line))
            size += len(line) + 1
        if self._mem:
            self._first_at = time.monotonic()
        return out

    def _take_all(self) -> List[Row]:
        """The memory queue as batches, each with its key. Lock held."""
        rows: List[Row] = []
        while self._mem:
            rows.extend(self._take())
        return rows

    def _spill(self) -> None:
        """Moves the memory queue to disk. Lock held."""
        self._store(self._take_all())

    def _store(self, rows: List[Row]) -> None:
        if self._closed and threading.current_thread() is self._thread:
            return  # close() gave up on this thread and kept its rows itself
        try:
            self.disk.put(rows)
        except (sqlite3.Error, OSError) as e:
            self.count("dropped_disk_error", len(rows))
            logger.error(
                "DROPPED %d events: cannot write the buffer %s: %s",
                len(rows),
                self.disk.path,
                e,
            )
        except BufferFull as e:
            self.count("dropped_buffer_full", e.dropped)
            self._dropped_since_log += e.dropped
            now = time.monotonic()
            if now - self._last_full_log >= _FULL_LOG_EVERY:
                logger.error(
                    "BUFFER FULL (%s, %d of %d bytes): DROPPED %d events "
                    "(%d in total) because parley has not accepted events for %s; "
                    "raise buffer_max_bytes or bring parley back",
                    self.disk.path,
                    self.disk.bytes,
                    self.disk.max_bytes,
                    self._dropped_since_log,
                    self.stats["dropped_buffer_full"],
                    _since(self._failing_since),
                )
                self._last_full_log = now
                self._dropped_since_log = 0

    def _send(self, batch: List[Row]) -> Response:
        timeout = self.cfg.timeout
        if self._closing:
            timeout = max(0.1, min(timeout, self._deadline - time.monotonic()))
        body = b"\n".join(r[2] for r in batch) + b"\n"
        return self.client.post(body, batch[0][1], timeout)

    def _handle(self, batch: List[Row], from_disk: bool, resp: Response, delay: float) -> float:
        """Acts on parley's answer; returns the delay before the next try."""
        st = resp.status
        if 200 <= st < 300:
            if from_disk:
                self.disk.remove(batch)
            self.count("sent", len(batch))
            if batch[0][1] in self._unknown:
                self._unknown.discard(batch[0][1])
                self.count("resent", len(batch))
            if self._failing_since is not None:
                logger.warning("parley accepts events again after %s", _since(self._failing_since))
                self._failing_since = None
            return 0.0
        if st == 0 or st >= 500 or st in _RETRYABLE_4XX or st in _CONFIG_4XX:
            if not from_disk:
                self._store(batch)
            self.count("retries", 1)
            if resp.unknown_outcome:
                self._unknown.add(batch[0][1])
            delay = min(self.cfg.retry_max_delay, max(0.1, delay * 2))
            if resp.retry_after is not None:
                delay = min(self.cfg.retry_max_delay, max(delay, resp.retry_after))
            if st in _CONFIG_4XX:
                delay = self.cfg.retry_max_delay
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                what = resp.reason or f"HTTP {st}"
                if st in _CONFIG_4XX:
                    what += " (check the event_broker url and token)"
                logger.error(
                    "parley at %s does not accept events (%s); keeping them in %s and retrying",
                    self.cfg.events_url,
                    what,
                    self.disk.path,
                )
            return delay
        # A 4xx about the events themselves: never retried as they are.
        if not from_disk:
            self._store(batch)
        if st == 413 and len(batch) > 1:
            half = len(batch) // 2
            self.disk.rekey(
                [
                    (new_key(), [r[0] for r in batch[:half]]),
                    (new_key(), [r[0] for r in batch[half:]]),
                ]
            )
            logger.warning(
                "parley refused a batch of %d events as too large "
                "(413); sending it in halves (lower max_batch_bytes)",
                len(batch),
            )
            return 0.0
        bad = batch
        if resp.line is not None and 1 <= resp.line <= len(batch) and len(batch) > 1:
            bad = [batch[resp.line - 1]]
        self.disk.remove(bad)
        rest = [r for r in batch if r not in bad]
        if rest:
            self.disk.rekey([(new_key(), [r[0] for r in rest])])
        self.count("rejected", len(bad))
        logger.error(
            "parley rejected %d event(s) (HTTP %d, error_code %s, %s); dropped "
            "them, %d others of the batch are resent",
            len(bad),
            st,
            resp.error_code,
            _describe(bad),
            len(rest),
        )
        return 0.0


def _describe(rows: List[Row]) -> str:
    """Which events, without their text: sequence numbers and types."""
    types = []
    for _, _, line in rows[:5]:
        try:
            types.append(str(json.loads(line).get("event")))
        except (ValueError, AttributeError):
            types.append("?")
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"seq {rows[0][0]}..{rows[-1][0]}, event types {types}{more}"


def _since(t: Optional[float]) -> str:
    if t is None:
        return "0s"
    return f"{time.monotonic() - t:.0f}s"
