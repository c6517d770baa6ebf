"""Issue #16, test 1: Rasa's own code loads the broker from endpoints.yml,
its tracker stores publish through it to a real `parley serve`, and the
rows parley writes are byte-identical to those of Rasa's SQLEventBroker."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest
from conftest import SQLITE_BROKER, fixture_events, save, sqlite_rows, wait_for
from rasa.core.brokers.broker import EventBroker
from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.exporter import Exporter
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from parley_rasa import ParleyEventBroker

# Beyond the fixtures: what json.dumps escapes or formats in its own way.
ODD_EVENTS = [
    {"event": "action", "timestamp": 1700000100.5, "name": "action_listen"},
    {
        "event": "user",
        "timestamp": 1700000101.000001,
        "text": 'Grüße 😀 "quoted" \\ back\u2028slash\ttab',
        "parse_data": {
            "intent": {"name": "greet", "confidence": 1e-07},
            "entities": [{"entity": "n", "value": 12345678901234567890}],
            "text": "Grüße",
        },
        "input_channel": "rest",
        "message_id": "m-1",
        "metadata": {"k": [1, 2.0, None, True]},
    },
    {"event": "slot", "timestamp": 1700000102.25, "name": "city", "value": "São Paulo"},
    {
        "event": "bot",
        "timestamp": 1700000103.0,
        "text": "Olá, \u00e9t\u00e9 ☀",
        "data": {"elements": None, "buttons": None},
        "metadata": {"utter_action": "utter_x"},
    },
]


def trackers():
    """Rasa trackers built from the repository's fixtures plus odd events;
    each is saved twice (half, then all) so saves publish only what is new."""
    groups = fixture_events()
    groups["odd-ünïcode"] = ODD_EVENTS
    out = []
    for sender, evs in groups.items():
        events = [Event.from_parameters(dict(e)) for e in evs]
        out.append((sender, events))
    return out


async def save_all(store) -> None:
    for sender, events in trackers():
        half = len(events) // 2
        tracker = DialogueStateTracker.from_events(sender, events[:half], slots=[])
        await save(store, tracker)
        tracker = DialogueStateTracker.from_events(sender, events, slots=[])
        await save(store, tracker)


@pytest.mark.parametrize("store_kind", ["in_memory", "sql"])
def test_tracker_store_rows_byte_identical_to_rasa_sql_broker(
    store_kind, parley_factory, tmp_path, monkeypatch
):
    parley = parley_factory(SQLITE_BROKER)
    monkeypatch.chdir(tmp_path)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "event_broker:\n"
        "  type: parley_rasa.ParleyEventBroker\n"
        f"  url: {parley.url}\n"
        "  batch_size: 7\n"
        "  buffer_dir: plugin-buffer\n"
    )
    domain = Domain.empty()

    def store_for(broker, name):
        if store_kind == "in_memory":
            return InMemoryTrackerStore(domain, event_broker=broker)
        return SQLTrackerStore(
            domain, dialect="sqlite", db=str(tmp_path / f"{name}-trackers.db"), event_broker=broker
        )

    async def run():
        # Exactly how Rasa's Agent loads the broker (rasa/core/agent.py).
        broker = await EventBroker.create(read_endpoint_config(str(endpoints), "event_broker"))
        assert isinstance(broker, ParleyEventBroker)
        assert broker.is_ready()
        await save_all(store_for(broker, "parley"))
        await broker.close()
        assert not broker.is_ready()
        stats = broker.stats()

        reference = SQLEventBroker(db=str(tmp_path / "rasa-events.db"))
        await save_all(store_for(reference, "rasa"))
        await reference.close()
        return stats

    stats = asyncio.run(run())
    want = sqlite_rows(tmp_path / "rasa-events.db")
    # At least every event once (Rasa's stores may republish a few around
    # a session start; whatever they publish is compared).
    assert len(want) >= sum(len(e) for _, e in trackers())
    assert stats["sent"] == len(want) and stats["buffered"] == 0, stats

    got_path = parley.workdir / "events.db"
    wait_for("parley to write every event", lambda: len(sqlite_rows(got_path)) >= len(want))
    got = sqlite_rows(got_path)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"row {i + 1} differs:\nparley: {g!r}\nrasa:   {w!r}"

    # The buffer holds conversation data: not readable by others.
    for f in (tmp_path / "plugin-buffer").iterdir():
        if f.suffix in (".sqlite", ".lock"):
            assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f


def test_rasa_export_through_the_broker(parley_factory, tmp_path, monkeypatch):
    """`rasa export`'s Exporter publishes a tracker store's events and then
    closes the broker: everything arrives, as SQLEventBroker writes it but
    for one difference parley makes: rasa export puts sender_id last, and
    POST /events stores it first (as Rasa's tracker stores publish it)."""
    parley = parley_factory(SQLITE_BROKER)
    monkeypatch.chdir(tmp_path)
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "trackers.db"))

    async def run():
        await save_all(store)
        broker = ParleyEventBroker(url=parley.url, buffer_dir="buf", batch_size=10)
        assert broker.is_ready()  # rasa export checks it first
        exported = await Exporter(store, broker, "endpoints.yml").publish_events()
        reference = SQLEventBroker(db=str(tmp_path / "rasa-events.db"))
        assert await Exporter(store, reference, "endpoints.yml").publish_events() == exported
        return broker.stats(), exported

    stats, exported = asyncio.run(run())
    assert stats["sent"] == exported and stats["buffered"] == 0, stats
    want = sqlite_rows(tmp_path / "rasa-events.db")
    got_path = parley.workdir / "events.db"
    wait_for("parley to write every event", lambda: len(sqlite_rows(got_path)) >= len(want))
    assert all(list(json.loads(d))[-1] == "sender_id" for _, d in want)  # rasa export's order

    def sender_first(data):
        ev = json.loads(data)
        return json.dumps({"sender_id": ev.pop("sender_id"), **ev})

    assert sqlite_rows(got_path) == [(s, sender_first(d)) for s, d in want]


def test_events_rasa_3_6_does_not_know_pass_unchanged(parley_factory, tmp_path):
    """Rasa Pro's newer events (flows, the dialogue stack) are dicts like
    any other: they arrive as json.dumps wrote them."""
    parley = parley_factory(SQLITE_BROKER)
    events = [
        {
            "sender_id": "pro",
            "event": "flow_started",
            "timestamp": 1.25,
            "metadata": {},
            "flow_id": "transfer_money",
        },
        {
            "sender_id": "pro",
            "event": "stack",
            "timestamp": 1.5,
            "metadata": {},
            "update": '[{"op": "add", "path": "/0", "value": {"type": "flow", "frame_id": "X"}}]',
        },
        {
            "sender_id": "pro",
            "event": "flow_completed",
            "timestamp": 2.0,
            "metadata": {},
            "flow_id": "transfer_money",
            "step_id": "END",
            "extra": [1e-05, None, "é"],
        },
    ]

    async def run():
        broker = ParleyEventBroker(url=parley.url, buffer_dir=str(tmp_path / "buf"))
        for ev in events:
            broker.publish(ev)
        await broker.close()

    asyncio.run(run())
    db = parley.workdir / "events.db"
    wait_for("parley to store the events", lambda: len(sqlite_rows(db)) >= len(events))
    assert sqlite_rows(db) == [("pro", json.dumps(ev)) for ev in events]
