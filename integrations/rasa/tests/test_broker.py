"""The broker's behaviour against parley's answers: retries keep a batch's
Idempotency-Key, a rejected event is dropped alone and logged without its
text, a full buffer is counted and logged, publish never waits for parley,
close is bounded, and the buffer survives a restart of Rasa."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, List

import pytest
from conftest import SQLITE_BROKER, free_port, sqlite_rows, wait_for

from parley_rasa import Config, ParleyEventBroker
from parley_rasa.buffer import DiskBuffer


class FakeParley:
    """POST /events answered by a function of (request number, key, lines)."""

    def __init__(self, answer: Callable[[int, str, List[bytes]], tuple]) -> None:
        self.requests: List[tuple] = []  # (key, lines, headers)
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                lines = [line for line in body.split(b"\n") if line]
                key = self.headers.get("Idempotency-Key")
                outer.requests.append((key, lines, dict(self.headers)))
                status, reply, *extra = answer(len(outer.requests), key, lines)
                if status == "drop":  # took the request, never answers
                    self.close_connection = True
                    return
                if status == "hang":
                    outer.release.wait(60)
                    status, reply = 202, {"accepted": len(lines)}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra[0].items() if extra else ():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    made = []

    def make(answer):
        f = FakeParley(answer)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def event(i: int, sender: str = "s1", text: str = "") -> dict:
    return {
        "sender_id": sender,
        "event": "user",
        "timestamp": 1700000000 + i,
        "text": text or f"hello {i}",
        "parse_data": {"intent": {"name": "greet"}},
    }


def cfg(tmp_path: Path, url: str, **kw) -> Config:
    base = dict(
        url=url,
        buffer_dir=str(tmp_path / "buf"),
        retry_max_delay=0.2,
        linger=0.01,
        timeout=5,
        close_timeout=5,
    )
    base.update(kw)
    return Config(**base)


def test_publish_serializes_as_rasa_and_sends_token_and_keys(fake, tmp_path):
    f = fake(lambda n, key, lines: (202, {"accepted": len(lines)}))
    b = ParleyEventBroker(cfg(tmp_path, f.url, token="s3cret", batch_size=10))  # noqa: S106
    evs = [event(i, text="Grüße 😀") for i in range(25)]
    for e in evs:
        b.publish(e)
    asyncio.run(b.close())
    lines = [line for _, ls, _ in f.requests for line in ls]
    assert lines == [json.dumps(e).encode() for e in evs]  # Rasa's brokers' bytes
    keys = [k for k, _, _ in f.requests]
    assert len(keys) == 3 and len(set(keys)) == 3 and all(keys)
    assert all(h["Authorization"] == "Bearer s3cret" for _, _, h in f.requests)
    assert all(h["Content-Type"] == "application/x-ndjson" for _, _, h in f.requests)


def test_retry_reuses_the_batch_key_and_bytes(fake, tmp_path):
    # The first answer is lost (503): the same batch comes again, same key.
    f = fake(
        lambda n, key, lines: (
            (503, {"error_code": 50301}) if n == 1 else (202, {"accepted": len(lines)})
        )
    )
    b = ParleyEventBroker(cfg(tmp_path, f.url, batch_size=5))
    for i in range(12):
        b.publish(event(i))
    wait_for("every event sent", lambda: b.stats().get("sent", 0) == 12)
    asyncio.run(b.close())
    (k1, l1, _), (k2, l2, _) = f.requests[0], f.requests[1]
    assert k1 == k2 and l1 == l2
    got = [line for _, ls, _ in f.requests[1:] for line in ls]
    assert got == [json.dumps(event(i)).encode() for i in range(12)]
    assert b.stats()["retries"] == 1


def test_a_lost_answer_is_retried_with_the_same_key_and_counted(fake, tmp_path):
    f = fake(lambda n, key, lines: ("drop", None) if n == 1 else (202, {"accepted": len(lines)}))
    b = ParleyEventBroker(cfg(tmp_path, f.url, batch_size=4))
    for i in range(4):
        b.publish(event(i))
    wait_for("the batch to be resent", lambda: b.stats().get("sent", 0) == 4)
    asyncio.run(b.close())
    assert [k for k, _, _ in f.requests] == [f.requests[0][0]] * 2
    assert f.requests[0][1] == f.requests[1][1]
    assert b.stats()["resent"] == 4  # parley may hold them twice


def test_close_tries_once_more_when_parley_is_back(fake, tmp_path):
    f = fake(
        lambda n, key, lines: (
            (503, {}, {"Retry-After": "60"}) if n == 1 else (202, {"accepted": len(lines)})
        )
    )
    # The next attempt would come only after 60 s; close does not wait for it.
    b = ParleyEventBroker(cfg(tmp_path, f.url, retry_max_delay=60, close_timeout=5))
    for i in range(3):
        b.publish(event(i))
    wait_for("the first attempt to fail", lambda: b.stats().get("retries", 0) == 1)
    asyncio.run(asyncio.wait_for(b.close(), 20))
    assert b.stats()["sent"] == 3 and b.stats()["buffered"] == 0


def test_a_rejected_event_is_dropped_alone_and_its_text_not_logged(fake, tmp_path, caplog):
    bad = b"TOP-SECRET-CONVERSATION-TEXT"

    def answer(n, key, lines):
        for i, line in enumerate(lines):
            if bad in line:
                return 400, {
                    "error_code": 42201,
                    "message": "invalid: " + line.decode(),
                    "line": i + 1,
                }
        return 202, {"accepted": len(lines)}

    f = fake(answer)
    b = ParleyEventBroker(cfg(tmp_path, f.url, batch_size=10))
    evs = [event(i, text=bad.decode() if i == 3 else "") for i in range(10)]
    with caplog.at_level(logging.DEBUG, logger="parley_rasa"):
        for e in evs:
            b.publish(e)
        wait_for("the batch to be resent", lambda: b.stats().get("sent", 0) == 9)
        asyncio.run(b.close())
    assert b.stats()["rejected"] == 1
    assert f.requests[1][1] == [json.dumps(e).encode() for i, e in enumerate(evs) if i != 3]
    assert f.requests[1][0] != f.requests[0][0]  # a different batch, a new key
    assert "rejected 1 event" in caplog.text
    assert bad.decode() not in caplog.text and "hello" not in caplog.text


def test_wrong_token_keeps_events_on_disk(fake, tmp_path, caplog):
    f = fake(lambda n, key, lines: (401, {"error_code": 40101}))
    b = ParleyEventBroker(cfg(tmp_path, f.url))
    for i in range(5):
        b.publish(event(i))
    wait_for("the events to reach the disk", lambda: b.stats().get("buffered", 0) == 5)
    asyncio.run(b.close())
    assert b.stats().get("rejected", 0) == 0
    assert "check the event_broker url and token" in caplog.text


def test_too_large_batch_is_split(fake, tmp_path):
    f = fake(
        lambda n, key, lines: (
            (413, {"error_code": 41301}) if len(lines) > 2 else (202, {"accepted": len(lines)})
        )
    )
    b = ParleyEventBroker(cfg(tmp_path, f.url, batch_size=8))
    for i in range(8):
        b.publish(event(i))
    wait_for("every event sent", lambda: b.stats().get("sent", 0) == 8)
    asyncio.run(b.close())
    got = [line for _, ls, _ in f.requests if len(ls) <= 2 for line in ls]
    assert got == [json.dumps(event(i)).encode() for i in range(8)]


def test_publish_never_waits_and_close_is_bounded(fake, tmp_path):
    f = fake(lambda n, key, lines: ("hang", None))
    b = ParleyEventBroker(cfg(tmp_path, f.url, batch_size=10, close_timeout=0.5, timeout=30))
    for i in range(1000):  # parley has answered nothing meanwhile
        b.publish(event(i))
    assert len(f.requests) <= 1
    asyncio.run(asyncio.wait_for(b.close(), 10))
    # Nothing lost: the batch in flight and the queue are on disk.
    assert b.stats()["buffered"] == 1000
    f.release.set()


def test_full_buffer_is_counted_and_logged(tmp_path, caplog):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens
    b = ParleyEventBroker(cfg(tmp_path, url, buffer_max_bytes=3000, queue_size=5))
    with caplog.at_level(logging.ERROR, logger="parley_rasa"):
        for i in range(100):
            b.publish(event(i))
        asyncio.run(b.close())
    s = b.stats()
    assert s["dropped_buffer_full"] > 0
    assert s["buffered"] + s["dropped_buffer_full"] == 100
    assert "BUFFER FULL" in caplog.text
    assert os.path.getsize(tmp_path / "buf" / "buffer-0.sqlite") > 0


def test_bad_config_names_the_key(caplog):
    for values, key in [
        ({"url": "localhost:5005"}, "url"),
        ({"batch_size": "many"}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"timeout": -1}, "timeout"),
        ({"buffer_max_bytes": "12 parsecs"}, "buffer_max_bytes"),
        ({"token": "${PARLEY_TOKEN}"}, "token"),
        ({"url": "http://user:pw@localhost:5005"}, "url"),
    ]:
        with pytest.raises(ValueError, match=rf"event_broker\.{key}:"):
            Config.from_mapping(values)
    c = Config.from_mapping({"buffer_max_bytes": "64MiB", "linger": "0.5", "batch_size": "20"})
    assert (c.buffer_max_bytes, c.linger, c.batch_size) == (64 << 20, 0.5, 20)
    assert "s3cr3t" not in repr(Config(token="s3cr3t"))  # noqa: S106
    Config.from_mapping({"batch_szie": 5})
    assert "event_broker.batch_szie is not a setting" in caplog.text


def test_two_processes_get_two_buffers(tmp_path):
    a = DiskBuffer(str(tmp_path), 1000)
    b = DiskBuffer(str(tmp_path), 1000)
    assert a.path != b.path
    a.put([(1, "k", b'{"event": "x"}')])  # journal files exist now
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "buffer-0.sqlite-wal" in files
    for name in files:  # conversation data: for Rasa's user only
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    a.close()
    c = DiskBuffer(str(tmp_path), 1000)  # a restarted process takes a's
    assert c.path == a.path
    b.close()
    c.close()


CHILD = """
import sys
from parley_rasa import Config, ParleyEventBroker
b = ParleyEventBroker(Config(url=sys.argv[1], buffer_dir=sys.argv[2], retry_max_delay=0.2))
for i in range(int(sys.argv[3])):
    b.publish({"sender_id": "s%d" % (i % 3), "event": "action", "timestamp": 1.5 + i,
               "name": "utter_%d" % i})
# exits without close(), as a Rasa killed by SIGTERM outside its server would
"""


def test_events_survive_a_rasa_restart(parley_factory, tmp_path):
    """Rasa publishes while parley is down and exits (without and with
    close); a new Rasa process sends the buffer, in order, before new events."""
    parley = parley_factory(SQLITE_BROKER, start=False)
    buf = str(tmp_path / "buf")
    subprocess.run([sys.executable, "-c", CHILD, parley.url, buf, "300"], check=True, timeout=60)

    async def second_run():
        b = ParleyEventBroker(
            Config(url=parley.url, buffer_dir=buf, retry_max_delay=0.2, close_timeout=0.5)
        )
        assert b.stats()["buffered"] == 300
        b.publish({"sender_id": "s0", "event": "action", "timestamp": 999.5, "name": "later"})
        await b.close()  # parley still down: stays on disk
        assert b.stats()["buffered"] == 301

        parley.start()
        b = ParleyEventBroker(Config(url=parley.url, buffer_dir=buf, retry_max_delay=0.2))
        b.publish({"sender_id": "s1", "event": "action", "timestamp": 1000.5, "name": "last"})
        wait_for("the buffer to drain", lambda: b.stats().get("sent", 0) == 302)
        await b.close()

    asyncio.run(second_run())
    wait_for(
        "parley to store 302 events", lambda: len(sqlite_rows(parley.workdir / "events.db")) >= 302
    )
    names = [json.loads(d)["name"] for _, d in sqlite_rows(parley.workdir / "events.db")]
    assert names == [f"utter_{i}" for i in range(300)] + ["later", "last"]
