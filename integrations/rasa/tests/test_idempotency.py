"""Exactly once across a lost answer: parley accepts a batch, its answer
never reaches the plugin, the plugin sends the batch again with the same
Idempotency-Key, and parley holds the events once.

parley's POST /events must honour the key: a repeated key is answered with
the first outcome and Idempotent-Replayed (a parley that ignores the key
fails here rather than skipping)."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from conftest import SQLITE_BROKER, sqlite_rows, wait_for

from parley_rasa import Config, ParleyEventBroker


def post(url, body, key):
    req = urllib.request.Request(  # noqa: S310
        url + "/events",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-ndjson", "Idempotency-Key": key},
    )
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return r.status, r.headers


def require_idempotency(parley):
    """parley answers a repeated key with Idempotent-Replayed."""
    body = b'{"sender_id": "probe", "event": "action", "timestamp": 1.5, "name": "x"}\n'
    key = "probe-" + uuid.uuid4().hex
    post(parley.url, body, key)
    _, headers = post(parley.url, body, key)
    assert headers.get("Idempotent-Replayed") is not None, (
        "parley answered a repeated Idempotency-Key without Idempotent-Replayed: "
        "POST /events does not honour the key"
    )


class LosingProxy:
    """Forwards POST /events to parley; drops the first n answers."""

    def __init__(self, target: str, lose: int) -> None:
        self.lost = 0
        outer = self
        host, port = urlsplit(target).hostname, urlsplit(target).port

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                conn = http.client.HTTPConnection(host, port, timeout=10)
                conn.request("POST", self.path, body=body, headers=dict(self.headers))
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if outer.lost < lose:  # parley has the events; the plugin never hears
                    outer.lost += 1
                    self.close_connection = True
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_batch_whose_answer_was_lost_is_stored_once(parley_factory, tmp_path):
    parley = parley_factory(SQLITE_BROKER)
    require_idempotency(parley)
    proxy = LosingProxy(parley.url, lose=2)
    try:
        events = [
            {"sender_id": f"s{i % 3}", "event": "action", "timestamp": 10.5 + i, "name": f"a{i}"}
            for i in range(30)
        ]

        async def run():
            cfg = Config(
                url=proxy.url, buffer_dir=str(tmp_path / "buf"), batch_size=10, retry_max_delay=0.2
            )
            b = ParleyEventBroker(cfg)
            for ev in events:
                b.publish(ev)
            wait_for("every event sent", lambda: b.stats().get("sent", 0) == 30)
            await b.close()
            return b.stats()

        stats = asyncio.run(run())
    finally:
        proxy.close()
    assert proxy.lost == 2 and stats["resent"] >= 10, stats
    db = parley.workdir / "events.db"
    wait_for("parley to store the events", lambda: len(sqlite_rows(db)) >= 31)
    rows = [json.loads(d) for _, d in sqlite_rows(db) if json.loads(d)["sender_id"] != "probe"]
    assert [r["name"] for r in rows] == [f"a{i}" for i in range(30)]  # once each, in order
