"""Fixtures: a real `parley serve` process, Rasa events, service addresses.

PARLEY_BIN names the parley binary (integrations/rasa/test.sh builds it);
without it the binary is built here with `go build`. Tests needing Kafka or
PostgreSQL read PARLEY_KAFKA_SEEDS / PARLEY_POSTGRES_DSN and skip without
them, unless PARLEY_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "internal" / "fixtures" / "data" / "events.ndjson"


async def save(store, tracker) -> None:
    """TrackerStore.save: a coroutine since Rasa 3.5, a function before."""
    result = store.save(tracker)
    if inspect.isawaitable(result):
        await result


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 60.0, every: float = 0.05):
    """Polls cond until it is true; fails naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        if os.environ.get("PARLEY_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{name} is not set and PARLEY_REQUIRE_SERVICES=1")
        pytest.skip(f'{name} not set (eval "$(scripts/services.sh env)")')
    return value


@pytest.fixture(scope="session")
def parley_bin(tmp_path_factory) -> str:
    path = os.environ.get("PARLEY_BIN")
    if path:
        return path
    out = tmp_path_factory.mktemp("bin") / "parley"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/parley"], cwd=REPO, check=True)
    return str(out)


class Parley:
    """A `parley serve` in its own directory, stopped and restarted at will."""

    def __init__(self, binary: str, workdir: Path, endpoints: str, token: str = "") -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        (workdir / "endpoints.yml").write_text(endpoints)
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"parley-{self.starts}.log", "wb")  # noqa: SIM115
        args = [
            self.binary,
            "serve",
            "--addr",
            f"127.0.0.1:{self.port}",
            "--endpoints",
            "endpoints.yml",
            "--shutdown-timeout",
            "10s",
        ]
        if self.token:
            args += ["--auth-token", self.token]
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=log)
        log.close()
        wait_for("parley serve to answer /health", self._healthy, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            logs = "".join(
                p.read_text(errors="replace")[-2000:] for p in self.workdir.glob("parley-*.log")
            )
            pytest.fail(f"parley serve exited with {self.proc.returncode}:\n{logs}")
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:  # noqa: S310
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def request(self, method: str, path: str, body=None, headers=None, timeout=30.0):
        data = json.dumps(body).encode() if body is not None else None
        url = self.url + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            return r.status, r.read()

    def consume(self, topic: str, count: int, group: str, timeout: float = 60.0) -> List[bytes]:
        """Reads count events (exact bytes) through the REST consumer API."""
        h = {"consumer-group": group, "consumer-name": "c1"}
        self.request("POST", "/consumers", {"auto.offset.reset": "earliest"}, h)
        self.request("POST", "/consumers/subscription", {"topics": [topic]}, h)
        out: List[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            _, body = self.request(
                "GET",
                "/consumers/records?data=value&timeout=2000",
                headers={**h, "Accept": "application/x-ndjson"},
            )
            out.extend(line for line in body.split(b"\n") if line)
        self.request("DELETE", "/consumers", headers=h)
        return out


@pytest.fixture
def parley_factory(parley_bin, tmp_path):
    started: List[Parley] = []

    def make(endpoints: str, token: str = "", start: bool = True) -> Parley:
        wd = tmp_path / f"parley{len(started)}"
        wd.mkdir()
        p = Parley(parley_bin, wd, endpoints, token)
        started.append(p)
        if start:
            p.start()
        return p

    yield make
    for p in started:
        p.stop()


SQLITE_BROKER = """\
event_broker:
  type: sql
  dialect: sqlite
  db: events.db
"""


def sqlite_rows(path: Path) -> List[tuple]:
    """(sender_id, data) of an events table in id order."""
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT sender_id, data FROM events ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def fixture_events() -> Dict[str, List[dict]]:
    """The repository's Rasa events, grouped by sender, in order."""
    out: Dict[str, List[dict]] = {}
    for line in FIXTURES.read_text().splitlines():
        if line.strip():
            ev = json.loads(line)
            out.setdefault(ev.pop("sender_id"), []).append(ev)
    return out
