"""Issue #16, test 2: parley stops (SIGTERM, then kill -9) while Rasa
publishes 5,000 events through the broker, and restarts; every event
arrives once, in per-sender order (see STRICT_ONCE)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter, defaultdict

from conftest import SQLITE_BROKER, save, sqlite_rows, wait_for
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from parley_rasa import Config, ParleyEventBroker

SENDERS = 50
TURNS = 50  # two events each: 50 * 50 * 2 = 5,000
# POST /events answers a retried Idempotency-Key with its first outcome and
# the SQL broker records its spool position in the rows' transaction, so a
# batch resent after a lost answer, or redelivered after parley's kill -9,
# lands once. PARLEY_RASA_STRICT_ONCE=0 only counts duplicates (for a parley
# without exactly-once delivery).
STRICT_ONCE = os.environ.get("PARLEY_RASA_STRICT_ONCE", "1") != "0"


def test_parley_down_and_up_while_rasa_publishes(parley_factory, tmp_path, capsys):
    parley = parley_factory(SQLITE_BROKER)
    cfg = Config(
        url=parley.url,
        buffer_dir=str(tmp_path / "buffer"),
        batch_size=50,
        retry_max_delay=0.5,
        timeout=5,
        close_timeout=30,
    )
    store = InMemoryTrackerStore(Domain.empty())
    trackers = {
        f"conv-{s:02d}": DialogueStateTracker(f"conv-{s:02d}", slots=[]) for s in range(SENDERS)
    }
    expected = defaultdict(list)
    ts = [1700000000.0]

    async def turns(broker, first, last):
        """Turns first..last-1 of every conversation, saved as Rasa does."""
        store.event_broker = broker
        for turn in range(first, last):
            for sender, tracker in trackers.items():
                for ev in (
                    UserUttered(f"{sender} says {turn}", {"name": "greet"}),
                    ActionExecuted("utter_greet"),
                ):
                    ts[0] += 0.001
                    ev.timestamp = round(ts[0], 3)
                    tracker.update(ev)
                    expected[sender].append((ev.type_name, turn))
                await save(store, tracker)

    async def run():
        broker = ParleyEventBroker(cfg)
        await turns(broker, 0, 10)  # 1,000 events, sent as they come
        parley.stop(signal.SIGTERM)  # while batches are in flight
        await turns(broker, 10, 20)
        wait_for(
            "events to wait on disk while parley is down",
            lambda: broker.stats().get("buffered", 0) > 0,
        )
        assert broker.is_ready()
        parley.start()
        await turns(broker, 20, 30)
        parley.stop(signal.SIGKILL)
        await turns(broker, 30, 40)
        wait_for(
            "events to wait on disk while parley is killed",
            lambda: broker.stats().get("buffered", 0) > 0,
        )
        parley.start()
        await turns(broker, 40, TURNS)
        wait_for(
            "the broker to send every event",
            lambda: broker.stats().get("sent", 0) >= SENDERS * TURNS * 2,
            timeout=120,
        )
        await broker.close()
        return broker.stats()

    stats = asyncio.run(run())
    total = SENDERS * TURNS * 2
    assert stats["published"] == total and stats["buffered"] == 0, stats
    assert stats["retries"] > 0, stats

    db = parley.workdir / "events.db"

    def unique_rows():
        return len(set(sqlite_rows(db)))

    wait_for("parley to store every event", lambda: unique_rows() >= total, timeout=120)

    rows = sqlite_rows(db)
    counts = Counter(rows)
    dups = sum(c - 1 for c in counts.values())
    seen = set()
    got = defaultdict(list)
    for sender, data in rows:
        if (sender, data) in seen:
            continue
        seen.add((sender, data))
        ev = json.loads(data)
        turn = int(ev["text"].rsplit(" ", 1)[1]) if ev["event"] == "user" else None
        got[sender].append((ev["event"], turn))
    # Actions carry no turn: fill it in from the user event before them.
    for evs in got.values():
        last = None
        for i, (typ, turn) in enumerate(evs):
            if typ == "user":
                last = turn
            else:
                evs[i] = ("action", last)
    want = {
        s: [("user" if t == "user" else "action", n) for t, n in evs] for s, evs in expected.items()
    }
    assert len(seen) == total
    for sender in want:
        assert got[sender] == want[sender], f"{sender}: order differs"
    with capsys.disabled():
        print(
            f"\n  outage test: {total} events, {len(rows)} rows, {dups} duplicates; the plugin "
            f"resent {stats.get('resent', 0)} events after a lost answer (the other duplicates "
            f"are parley's at-least-once delivery to its SQL broker); broker stats {stats}"
        )
    if STRICT_ONCE:
        assert dups == 0, f"{dups} events arrived more than once"
