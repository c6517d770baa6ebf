#!/usr/bin/env python3
"""Publish NDJSON tracker events through Rasa 3.6's own event broker classes.

This is the reference side of parley's byte comparisons and benchmarks: it
configures a broker from an endpoints.yml exactly as `rasa run` does
(`read_endpoint_config(path, "event_broker")` then `EventBroker.create`) and
calls `publish(body)` once per event exactly as Rasa's tracker store does
(`body = {"sender_id": sid}; body.update(rest)`), so what reaches the broker
is what a real Rasa deployment would have sent.

Run it with the venv made by bench/rasa/setup.sh:

    py=$(bench/rasa/setup.sh)
    "$py" bench/rasa/rasa_publish.py --endpoints endpoints.yml \
        --count 5000 --bench --json-stats

Timing (--json-stats): `seconds` covers the publish loop plus the wait
until every event is really at the broker: the Kafka producer is flushed
(Rasa's close), Pika's fire-and-forget publish tasks are awaited (each one
waits for its publisher confirm) before the connection is closed, and the
SQL broker commits once per event inside publish. With --bench, connection
setup is excluded (Rasa's Kafka broker connects lazily inside the first
publish; --bench makes that connection first, through the broker's own
methods), so `seconds` is the steady-state publish cost; without it,
`seconds` also includes EventBroker.create.

Exit status: 0 when every event was published; 1 when the broker reported
failures (Kafka delivery errors, Pika publishes Rasa parked as
unpublished, an exception from publish); 2 for bad usage or input.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import sys
import time
import warnings
from typing import Any, Dict, Iterator, List, Optional

# SQLAlchemy 1.4 warns on import of Rasa's declarative models; the warning
# is noise here, not a finding.
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
warnings.filterwarnings("ignore", category=DeprecationWarning)


# The fixtures parley embeds (internal/fixtures): 84 events of every type,
# three conversations.
DEFAULT_INPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "internal", "fixtures", "data", "events.ndjson")


def configure_logging(level: int) -> None:
    """Send Rasa's stdlib and structlog output to stderr at `level`.

    structlog's unconfigured default prints every level to stdout, which
    would both slow the publish loop and corrupt --json-stats output. Rasa
    itself filters at INFO by default (LOG_LEVEL), dropping the per-event
    debug lines the Pika broker emits, so WARNING costs about the same.
    """
    import structlog

    logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s %(name)s: %(message)s")
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.KeyValueRenderer(key_order=["level", "event"]),
        ],
    )


def read_events(path: str) -> List[Dict[str, Any]]:
    """Reads an NDJSON file of events, each with a string sender_id."""
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: not JSON: {e}")
            if not isinstance(ev, dict) or not isinstance(ev.get("sender_id"), str):
                raise SystemExit(f"{path}:{n}: an event must be a JSON object with a string sender_id")
            events.append(ev)
    if not events:
        raise SystemExit(f"{path}: no events")
    return events


def expand(events: List[Dict[str, Any]], count: Optional[int]) -> Iterator[Dict[str, Any]]:
    """Yields `count` events, cycling through `events`.

    The first pass is the input unchanged. Pass k >= 1 suffixes every
    sender_id with "-k", so a repeated conversation is a new conversation
    (as it would be in a real deployment) rather than a duplicate of one
    already published.
    """
    if count is None:
        yield from events
        return
    for i in range(count):
        k, j = divmod(i, len(events))
        ev = events[j]
        if k:
            ev = dict(ev)
            ev["sender_id"] = f"{ev['sender_id']}-{k}"
        yield ev


def tracker_body(ev: Dict[str, Any]) -> Dict[str, Any]:
    """Builds the publish body as TrackerStore._stream_new_events does."""
    rest = dict(ev)
    sender_id = rest.pop("sender_id")
    body: Dict[str, Any] = {"sender_id": sender_id}
    body.update(rest)
    return body


class KafkaDeliveries:
    """Counts Kafka delivery reports.

    Rasa's KafkaEventBroker never raises on a failed delivery: it only logs
    from the module-level `delivery_report`, which `_publish` looks up at
    call time. Wrapping that function lets the driver tell a complete run
    from a lossy one without changing anything that is sent.
    """

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.first_error: Optional[str] = None

    def install(self) -> None:
        import rasa.core.brokers.kafka as kafka_module

        original = kafka_module.delivery_report

        def delivery_report(err: Any, msg: Any) -> None:
            if err is None:
                self.ok += 1
            else:
                self.failed += 1
                if self.first_error is None:
                    self.first_error = str(err)
            original(err, msg)

        kafka_module.delivery_report = delivery_report


async def connect_kafka(broker: Any) -> None:
    """Makes the lazy Kafka connection before the timed loop (--bench).

    It runs the same two calls `KafkaEventBroker.publish` makes on its first
    call, so the timed loop starts with a connected producer, as parley's
    does after Open.
    """
    from confluent_kafka import KafkaException

    if broker.producer is None:
        broker.producer = broker._create_producer()
        try:
            broker._check_kafka_connection()
        except KafkaException as e:
            raise SystemExit(f"kafka: cannot connect to {broker.url!r}: {e}")


async def run(args: argparse.Namespace) -> int:
    # A Rasa server has imported rasa.shared.core.events (through the
    # tracker store) long before a broker publishes, and the Kafka and Pika
    # brokers rely on that: they call rasa.shared.core.events.
    # remove_parse_data without importing it. Import it the same way here.
    import rasa.core.tracker_store  # noqa: F401
    import rasa.shared.core.events  # noqa: F401
    from rasa.core.brokers.broker import EventBroker
    from rasa.utils.endpoints import read_endpoint_config

    # Importing Rasa resets warning filters; its deprecation noise is not
    # a finding here (UserWarnings such as Pika's missing-queues one stay).
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    events = read_events(args.input)
    bodies = [tracker_body(ev) for ev in expand(events, args.count)]
    if args.write_input:
        with open(args.write_input, "w", encoding="utf-8") as f:
            for b in bodies:
                f.write(json.dumps(b, ensure_ascii=False, separators=(",", ":")) + "\n")

    cfg = read_endpoint_config(args.endpoints, "event_broker")
    if cfg is None:
        print(f"{args.endpoints}: no event_broker section (or no such file)", file=sys.stderr)
        return 2

    deliveries = KafkaDeliveries()
    deliveries.install()

    t_create = time.perf_counter()
    broker = await EventBroker.create(cfg, asyncio.get_running_loop())
    if broker is None:
        print(f"{args.endpoints}: Rasa created no event broker (type {cfg.type!r})", file=sys.stderr)
        return 2
    kind = type(broker).__name__
    is_kafka = kind == "KafkaEventBroker"
    is_pika = kind == "PikaEventBroker"
    if args.bench and is_kafka:
        await connect_kafka(broker)

    t0 = time.perf_counter() if args.bench else t_create
    failed = 0
    error: Optional[str] = None
    try:
        for body in bodies:
            broker.publish(body)
            if is_pika and args.max_pending:
                # Under a real server the event loop runs publish tasks
                # between requests, so fewer are pending at once than
                # when one loop publishes everything; this bounds them.
                while len(broker._background_tasks) >= args.max_pending:
                    await asyncio.wait(list(broker._background_tasks), return_when=asyncio.FIRST_COMPLETED)
        if is_pika:
            # Rasa's close() does not wait for its publish tasks; a clean
            # shutdown (and a fair measurement) does. Each task finishes
            # after the broker's publisher confirm or after parking the
            # event in _unpublished_events.
            while broker._background_tasks:
                await asyncio.gather(*list(broker._background_tasks), return_exceptions=True)
            failed += len(broker._unpublished_events)
    except Exception as e:  # reported, then the broker is still closed
        error = f"{type(e).__name__}: {e}"
    finally:
        await broker.close()
    seconds = time.perf_counter() - t0

    if is_kafka:
        failed += deliveries.failed
        missing = len(bodies) - deliveries.ok - deliveries.failed
        if missing and error is None:
            error = f"{missing} events got no delivery report (Rasa drops events when its first connection check fails)"
        failed += missing
        if deliveries.first_error:
            error = error or f"delivery failed: {deliveries.first_error}"
    if error and not failed:
        failed = len(bodies)

    n = len(bodies)
    if args.json_stats:
        print(json.dumps({
            "broker": kind,
            "events": n,
            "failed": failed,
            "seconds": round(seconds, 6),
            "events_per_sec": round(n / seconds, 1) if seconds > 0 else None,
            "bench": bool(args.bench),
        }))
    elif not args.quiet:
        print(f"published {n} events through Rasa's {kind} in {seconds:.3f}s ({n / seconds:.0f}/s)", file=sys.stderr)
    if error:
        print(f"rasa_publish: {kind}: {failed} of {n} events failed: {error}", file=sys.stderr)
    elif failed:
        print(f"rasa_publish: {kind}: {failed} of {n} events failed", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoints", required=True, help="endpoints.yml with an event_broker section (read by Rasa)")
    p.add_argument("--input", default=DEFAULT_INPUT, help="NDJSON events, each with sender_id (default: the repo's fixtures)")
    p.add_argument("--count", type=int, help="publish N events, cycling the input (repeats get sender_id suffix -1, -2, ...)")
    p.add_argument("--json-stats", action="store_true", help='print {"events":N,"seconds":S,"events_per_sec":R,...} on stdout')
    p.add_argument("--bench", action="store_true", help="time only the publish loop and flush/close, not connection setup")
    p.add_argument("--write-input", metavar="PATH", help="also write the expanded events (compact NDJSON) to PATH, to feed the same stream to parley")
    p.add_argument("--max-pending", type=int, default=0, metavar="N",
                   help="pika: wait while N publish tasks are pending (default 0: no bound, as when one tracker save publishes every event)")
    p.add_argument("--log-level", default="WARNING", help="Rasa's log level, on stderr (default WARNING)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = p.parse_args()
    if args.count is not None and args.count < 1:
        p.error("--count must be at least 1")
    configure_logging(logging.getLevelName(args.log_level.upper()))
    try:
        return asyncio.run(run(args))
    except SystemExit as e:
        if isinstance(e.code, str):
            print(f"rasa_publish: {e.code}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
