"""Issue #16, test 4: the two integrations that need no plugin. Rasa's own
Kafka broker, and Rasa's own SQL broker, write; parley's REST consumer API
reads what they wrote, byte for byte."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict

from conftest import fixture_events, save, service_env, sqlite_rows
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config


def publish_through_rasa(endpoints_path) -> list:
    """Loads the broker from endpoints.yml as Rasa does, saves the fixture
    trackers, and returns the bytes Rasa serialized, in publish order."""
    published = []

    async def run():
        broker = await EventBroker.create(read_endpoint_config(str(endpoints_path), "event_broker"))
        assert broker is not None, "Rasa did not create the broker"
        publish = broker.publish

        def recording(event, *args, **kwargs):
            published.append(json.dumps(event).encode())  # what Rasa's brokers send
            return publish(event, *args, **kwargs)

        broker.publish = recording
        store = InMemoryTrackerStore(Domain.empty(), event_broker=broker)
        for sender, evs in fixture_events().items():
            events = [Event.from_parameters(dict(e)) for e in evs]
            await save(store, DialogueStateTracker.from_events(sender, events, slots=[]))
        await broker.close()  # Kafka: flushes the producer

    asyncio.run(run())
    return published


def by_sender(lines):
    out = defaultdict(list)
    for line in lines:
        out[json.loads(line)["sender_id"]].append(line)
    return dict(out)


def test_rasa_kafka_broker_then_parley_consumer_api(parley_factory, tmp_path):
    seeds = service_env("PARLEY_KAFKA_SEEDS")
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"rasa-plugin-nocode-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": seeds})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    try:
        rasa_yml = tmp_path / "rasa-endpoints.yml"
        rasa_yml.write_text(
            "event_broker:\n  type: kafka\n"
            f"  url: {seeds}\n  topic: {topic}\n"
            "  security_protocol: PLAINTEXT\n  partition_by_sender: true\n"
        )
        published = publish_through_rasa(rasa_yml)
        assert len(published) >= 84

        parley = parley_factory(
            "event_broker:\n  type: kafka\n"
            f"  url: {seeds}\n  topic: {topic}\n  security_protocol: PLAINTEXT\n"
            "consumer_api:\n  source: kafka\n"
        )
        got = parley.consume(topic, len(published), group=f"g-{topic}")
        assert sorted(got) == sorted(published)
        # Partitioned by sender: each conversation's order holds.
        assert by_sender(got) == by_sender(published)
    finally:
        admin.delete_topics([topic])


def test_rasa_sql_broker_then_parley_consumer_api(parley_factory, tmp_path):
    db = tmp_path / "rasa-events.db"
    rasa_yml = tmp_path / "rasa-endpoints.yml"
    rasa_yml.write_text(f"event_broker:\n  type: sql\n  dialect: sqlite\n  db: {db}\n")
    published = publish_through_rasa(rasa_yml)
    rows = [data.encode() for _, data in sqlite_rows(db)]
    assert rows == published  # Rasa's rows are what it serialized

    parley = parley_factory(
        f"event_broker:\n  type: sql\n  dialect: sqlite\n  db: {db}\nconsumer_api:\n  source: sql\n"
    )
    got = parley.consume("rasa_core_events", len(published), group="analytics")
    assert got == published  # one partition: the table's order
