"""POST /events to parley over one kept-alive HTTP connection."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from .config import Config

_MAX_ERROR_BODY = 64 * 1024


@dataclass
class Response:
    status: int  # 0 when parley could not be reached
    retry_after: Optional[float] = None
    error_code: Optional[int] = None
    line: Optional[int] = None  # 1-based NDJSON line parley rejected
    reason: str = ""  # connection error; never the request's events
    # parley may have accepted the request: sent, but no answer came.
    unknown_outcome: bool = False


class Client:
    """Sends NDJSON batches; one request at a time (the sender thread's)."""

    def __init__(self, cfg: Config) -> None:
        parts = urlsplit(cfg.events_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._path = parts.path + (("?" + parts.query) if parts.query else "")
        self._token = cfg.token
        self._cafile = cfg.cafile
        self._conn: Optional[http.client.HTTPConnection] = None

    def post(self, body: bytes, key: str, timeout: float) -> Response:
        headers = {
            "Content-Type": "application/x-ndjson",
            "Idempotency-Key": key,
            "User-Agent": "parley-rasa",
        }
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        for attempt in (1, 2):
            reused = self._conn is not None and self._conn.sock is not None
            try:
                conn = self._connection(timeout)
                conn.request("POST", self._path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read(_MAX_ERROR_BODY)
                if resp.will_close or not resp.isclosed():
                    self.close()
                break
            except (OSError, http.client.HTTPException) as e:
                self.close()
                # A kept-alive connection parley closed while idle: one more
                # try on a new one (the same key makes a repeat harmless).
                stale = isinstance(
                    e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                )
                if attempt == 1 and reused and stale:
                    continue
                # Refused: nothing was sent. Anything later may have been
                # accepted by parley before the answer was lost.
                refused = isinstance(e, ConnectionRefusedError)
                return Response(0, reason=f"{type(e).__name__}: {e}", unknown_outcome=not refused)
        out = Response(resp.status, retry_after=_seconds(resp.getheader("Retry-After")))
        if 400 <= resp.status < 600:
            try:
                err = json.loads(data)
                out.error_code = err.get("error_code")
                out.line = err.get("line")
            except (ValueError, AttributeError):
                pass
        return out

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                ctx = ssl.create_default_context(cafile=self._cafile)
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=ctx
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
