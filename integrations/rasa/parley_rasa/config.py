"""The broker's settings: the keys of endpoints.yml's event_broker section."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional
from urllib.parse import urlsplit

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
logger = logging.getLogger("parley_rasa")
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True)
class Config:
    """Settings with their defaults. Every field is an endpoints.yml key."""

    # parley's base URL; events go to {url}/events.
    url: str = "http://localhost:5005"
    # parley's --auth-token, sent as "Authorization: Bearer <token>".
    token: Optional[str] = field(default=None, repr=False)
    # Seconds one HTTP request to parley may take.
    timeout: float = 10.0
    # Events per POST /events, at most.
    batch_size: int = 100
    # Bytes of NDJSON per POST /events, at most (parley's --max-body is 10 MiB).
    max_batch_bytes: int = 1024**2
    # Seconds the sender waits for a batch to fill before sending it anyway.
    linger: float = 0.05
    # Events held in memory before they are written to the on-disk buffer.
    queue_size: int = 10_000
    # Where the on-disk buffer lives (relative to Rasa's working directory).
    buffer_dir: str = ".parley-rasa"
    # Largest size of the on-disk buffer's events; beyond it new events are
    # dropped, logged and counted.
    buffer_max_bytes: int = 256 * 1024**2
    # Longest wait between two attempts while parley is down.
    retry_max_delay: float = 10.0
    # Seconds close() spends sending what is queued; the rest stays on disk.
    close_timeout: float = 10.0
    # CA file to verify an https parley with (else the system's).
    cafile: Optional[str] = None

    @property
    def events_url(self) -> str:
        return self.url.rstrip("/") + "/events"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Config:
        """Validates endpoints.yml values; errors name the key at fault."""
        known = {f for f in cls.__dataclass_fields__}
        kw: Dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                logger.warning(
                    "event_broker.%s is not a setting of ParleyEventBroker; ignored",
                    key,
                )
                continue
            if value is None:
                continue
            kw[key] = _convert(key, value, cls.__dataclass_fields__[key].type)
        cfg = cls(**kw)
        cfg._validate()
        return cfg

    def _validate(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            _fail("url", self.url, "is not an http:// or https:// URL of parley serve")
        if parts.username or parts.password:
            _fail("url", "(with a user or password)", "must not hold credentials; use token")
        if self.token is not None and "${" in self.token:
            _fail(
                "token",
                "${...}",
                "names an environment variable that was not set "
                "(Rasa substitutes ${VAR} only in unquoted values)",
            )
        for name in ("timeout", "linger", "retry_max_delay", "close_timeout"):
            if getattr(self, name) < 0 or (name == "timeout" and self.timeout == 0):
                _fail(name, getattr(self, name), "must be a positive number of seconds")
        for name in ("batch_size", "max_batch_bytes", "queue_size", "buffer_max_bytes"):
            if getattr(self, name) < 1:
                _fail(name, getattr(self, name), "must be at least 1")


def _fail(key: str, value: Any, why: str) -> None:
    raise ValueError(f"parley_rasa: event_broker.{key}: {value!r} {why}")


def _convert(key: str, value: Any, typ: Any) -> Any:
    typ = str(typ)
    if "str" in typ:
        return str(value)
    if key.endswith("_bytes"):
        return _size(key, value)
    try:
        if "int" in typ:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        _fail(key, value, "is not a number")


def _size(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m or m.group(2).lower() not in _UNITS:
        _fail(key, value, "is not a size (a number of bytes, or e.g. 256MiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]
