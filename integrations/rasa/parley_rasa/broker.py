"""ParleyEventBroker: Rasa's EventBroker interface over parley's POST /events."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import time
from typing import Any, Dict, Optional, Text

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from .config import Config
from .sender import Sender

logger = logging.getLogger("parley_rasa")


class ParleyEventBroker(EventBroker):
    """Publishes Rasa's tracker events to parley without blocking Rasa.

    endpoints.yml::

        event_broker:
          type: parley_rasa.ParleyEventBroker
          url: http://localhost:5005
          token: ${PARLEY_TOKEN}

    ``publish`` serializes the event exactly as Rasa's own brokers do
    (``json.dumps(event)``, UTF-8) and queues it; a background thread sends
    the queue in order to ``POST /events`` as NDJSON batches. What parley
    does not accept waits in an on-disk buffer and is sent, still in order,
    when parley is back, also after a restart of Rasa.
    """

    def __init__(self, config: Optional[Config] = None, **kwargs: Any) -> None:
        self.config = config or Config.from_mapping(kwargs)
        self._sender = Sender(self.config)
        atexit.register(self._sender.flush_to_disk)

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: EndpointConfig,
        event_loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> ParleyEventBroker:
        """Creates the broker from endpoints.yml's event_broker section."""
        for key in ("headers", "basic_auth", "params"):
            if getattr(broker_config, key, None):
                logger.warning(
                    "event_broker.%s is not a setting of ParleyEventBroker; ignored", key
                )
        values: Dict[str, Any] = dict(broker_config.kwargs)
        values["url"] = broker_config.url
        values["token"] = broker_config.token
        values["cafile"] = broker_config.cafile
        broker = cls(Config.from_mapping(values))
        logger.info(
            "publishing events to %s (buffer %s)",
            broker.config.events_url,
            broker._sender.disk.path,
        )
        return broker

    def publish(self, event: Dict[Text, Any]) -> None:
        """Queues one event; returns at once whatever state parley is in."""
        try:
            line = json.dumps(event).encode("utf-8")
        except (TypeError, ValueError) as e:
            # Rasa's own brokers would raise here; one bad event must not
            # break the conversation, so it is counted and logged (its
            # type only: the text is conversation data).
            self._sender.count("unserializable")
            logger.error(
                "event of type %r is not JSON-serializable, dropped: %s",
                event.get("event") if isinstance(event, dict) else None,
                type(e).__name__,
            )
            return
        self._sender.put(line)

    def is_ready(self) -> bool:
        """True while the broker accepts events: its sender runs and its
        buffer is open. parley itself may be down (events are buffered)."""
        return self._sender.is_alive()

    async def close(self) -> None:
        """Sends what is queued for at most close_timeout seconds; what is
        left stays in the on-disk buffer for the next start."""
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._sender.close, self.config.close_timeout)
        atexit.unregister(self._sender.flush_to_disk)
        logger.debug("close took %.2fs", time.monotonic() - start)

    def stats(self) -> Dict[str, int]:
        """Counters: published, sent, retries, resent (events sent again
        after an attempt whose answer was lost: with a parley that does not
        deduplicate by Idempotency-Key, they may have arrived twice),
        rejected, dropped_buffer_full, dropped_disk_error, dropped_after_close,
        unserializable,
        and buffered (events on disk now)."""
        return self._sender.counters()
