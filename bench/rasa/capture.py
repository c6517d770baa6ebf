#!/usr/bin/env python3
"""Read back what arrived at a broker, canonically, for byte comparison.

Used by scripts/rasa-compare.sh with the venv from bench/rasa/setup.sh. Each
reader writes one JSON record per message (or row) on stdout, in arrival
order, so that two captures of the same publish are identical files:

    capture.py sqlite DB
    capture.py postgres DSN SCHEMA
    capture.py kafka BOOTSTRAP TOPIC --expect N
    capture.py amqp URL QUEUE --expect N [--check-exchange NAME]
    capture.py diff RASA PARLEY [--extension KEY ...]

and the set-up the comparison needs (Kafka has auto topic creation off, and
Rasa's broker assumes its topic exists; each side's SQL table lives in its
own PostgreSQL schema, as the role may not create databases):

    capture.py kafka-topic BOOTSTRAP create|delete TOPIC [--partitions N]
    capture.py pg-schema DSN create|drop SCHEMA
    capture.py amqp-delete URL [--queue Q ...] [--exchange E ...]

Every byte string (Kafka keys, values and header values; AMQP bodies) is
written as a JSON string of its bytes decoded as Latin-1: a lossless one
byte = one code point mapping, readable as long as the bytes are ASCII
(which Rasa's json.dumps output always is). Kafka offsets and timestamps,
AMQP delivery tags and the exchange name are left out: they differ between
any two runs by construction.

`diff` compares two captures record by record and prints each difference
field by field. Fields named with --extension (e.g. kafka header
parley-event-id) are parley additions: they are removed from the parley
side before comparing, after checking that each record has one, and
reported as a note. Fields named with --volatile (amqp message_id, which
aiormq fills with a random UUID under Rasa) are compared for presence only. Exit status 0 when equal, 1 when
not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple


def b2s(b: Optional[bytes]) -> Optional[str]:
    """Encodes bytes losslessly as a string (Latin-1, see module doc)."""
    if b is None:
        return None
    if isinstance(b, str):  # some clients hand back already-decoded text
        return b
    return bytes(b).decode("latin-1")


def emit(rec: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(rec, ensure_ascii=True, sort_keys=False) + "\n")


# --- SQL -----------------------------------------------------------------

def capture_sqlite(path: str) -> int:
    import sqlite3

    if not os.path.exists(path):
        print(f"capture: {path}: no such database", file=sys.stderr)
        return 1
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    # Column names, declared types, NOT NULL and primary key; not the
    # CREATE statement's text, which differs in whitespace between tools.
    cols = [[r[1], r[2].upper(), bool(r[3]), r[5]] for r in con.execute("PRAGMA table_info(events)")]
    emit({"columns": cols})
    for id_, sender, data in con.execute("SELECT id, sender_id, data FROM events ORDER BY id"):
        emit({"id": id_, "sender_id": sender, "data": data})
    return 0


def capture_postgres(dsn: str, schema: str) -> int:
    import psycopg2

    con = psycopg2.connect(dsn, options=f"-c search_path={schema}")
    cur = con.cursor()
    cur.execute(
        "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = 'events' "
        "ORDER BY ordinal_position",
        (schema,),
    )
    emit({"columns": [list(r) for r in cur.fetchall()]})
    cur.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (f"{schema}.events",),
    )
    emit({"primary_key": [r[0] for r in cur.fetchall()]})
    cur.execute("SELECT id, sender_id, data FROM events ORDER BY id")
    for id_, sender, data in cur:
        emit({"id": id_, "sender_id": sender, "data": data})
    con.close()
    return 0


# --- Kafka ---------------------------------------------------------------

def capture_kafka(bootstrap: str, topic: str, expect: int, timeout: float) -> int:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"rasa-compare-{os.getpid()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    })
    try:
        md = c.list_topics(topic, timeout=10)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None:
            print(f"capture: kafka topic {topic}: {tmd.error if tmd else 'missing'}", file=sys.stderr)
            return 1
        parts = sorted(tmd.partitions)
        deadline = time.monotonic() + timeout
        # Wait until the topic holds `expect` records, so a slow producer
        # is not mistaken for a lossy one.
        while True:
            highs = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
            lows = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0] for p in parts}
            total = sum(highs[p] - lows[p] for p in parts)
            if total >= expect or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        c.assign([TopicPartition(topic, p, lows[p]) for p in parts])
        got: Dict[int, List[Any]] = {p: [] for p in parts}
        done = {p for p in parts if highs[p] <= lows[p]}
        while len(done) < len(parts):
            if time.monotonic() > deadline + 30:
                print(f"capture: kafka topic {topic}: timed out reading", file=sys.stderr)
                return 1
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= highs[m.partition()]:
                        done.add(m.partition())
                    continue
                print(f"capture: kafka: {m.error()}", file=sys.stderr)
                return 1
            p = m.partition()
            if m.offset() < highs[p]:
                got[p].append(m)
            if m.offset() + 1 >= highs[p]:
                done.add(p)
        for p in parts:
            for m in got[p]:
                emit({
                    "partition": p,
                    "key": b2s(m.key()),
                    "value": b2s(m.value()),
                    "headers": [[k, b2s(v)] for k, v in (m.headers() or [])],
                })
        return 0
    finally:
        c.close()


# --- RabbitMQ ------------------------------------------------------------

AMQP_PROPS = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority",
    "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
    "message_type", "user_id", "app_id", "cluster_id",
)


def plain(v: Any) -> Any:
    """Makes an AMQP field value JSON-able without losing its type."""
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": b2s(bytes(v))}
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if hasattr(v, "isoformat"):
        return {"time": v.isoformat()}
    return v


async def capture_amqp(url: str, queue: str, expect: int, timeout: float, check_exchange: Optional[str]) -> int:
    # aiormq rather than aio-pika: it hands back the properties as sent,
    # so an absent property (None) stays distinct from an empty one (an
    # empty header table, say), which aio-pika's Message would blur.
    import aiormq
    from pamqp import commands as spec

    conn = await aiormq.connect(url)
    try:
        if check_exchange:
            # Declaring with Rasa's (aio-pika's default) arguments succeeds
            # only when the existing exchange and queue were declared the
            # same way; RabbitMQ answers PRECONDITION_FAILED otherwise,
            # which is what a Rasa sharing this broker would hit.
            topo: Dict[str, Any] = {}
            for what, decl in (
                ("exchange", lambda ch: ch.exchange_declare(check_exchange, exchange_type="fanout", durable=False, auto_delete=False, internal=False)),
                ("queue", lambda ch: ch.queue_declare(queue, durable=True, exclusive=False, auto_delete=False)),
            ):
                ch = await conn.channel()
                try:
                    await decl(ch)
                    topo[what] = "as rasa declares it"
                except aiormq.exceptions.ChannelPreconditionFailed as e:
                    topo[what] = f"differs from rasa's declaration: {e}"
                finally:
                    if not ch.is_closed:
                        await ch.close()
            emit({"topology": topo})
        ch = await conn.channel()
        await ch.queue_declare(queue, passive=True)
        deadline = time.monotonic() + timeout
        n = 0
        while n < expect or expect == 0:
            m = await ch.basic_get(queue, no_ack=True)
            if isinstance(m.delivery, spec.Basic.GetEmpty):
                if time.monotonic() > deadline or expect == 0:
                    break
                await asyncio.sleep(0.1)
                continue
            n += 1
            props = m.header.properties
            rec: Dict[str, Any] = {"routing_key": m.delivery.routing_key, "body": b2s(m.body)}
            for prop in AMQP_PROPS:
                rec[prop] = plain(getattr(props, prop, None))
            emit(rec)
        return 0
    finally:
        await conn.close()


# --- set-up --------------------------------------------------------------

def kafka_topic(bootstrap: str, action: str, topic: str, partitions: int) -> int:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    if action == "create":
        futs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    else:
        futs = admin.delete_topics([topic])
    try:
        futs[topic].result(timeout=30)
    except Exception as e:
        print(f"capture: kafka {action} topic {topic}: {e}", file=sys.stderr)
        return 1
    if action == "create":
        # Wait until the metadata shows every partition with a leader, so
        # neither producer starts against a half-created topic.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            t = admin.list_topics(topic, timeout=10).topics.get(topic)
            if t and t.error is None and len(t.partitions) == partitions and all(
                pm.leader >= 0 for pm in t.partitions.values()
            ):
                return 0
            time.sleep(0.1)
        print(f"capture: kafka topic {topic}: partitions have no leader after 30s", file=sys.stderr)
        return 1
    return 0


async def amqp_delete(url: str, queues: List[str], exchanges: List[str]) -> int:
    import aio_pika

    conn = await aio_pika.connect(url)
    try:
        ch = await conn.channel()
        for q in queues:
            await ch.queue_delete(q)
        for e in exchanges:
            await ch.exchange_delete(e)
    finally:
        await conn.close()
    return 0


def pg_schema(dsn: str, action: str, schema: str) -> int:
    import psycopg2

    con = psycopg2.connect(dsn)
    con.autocommit = True
    q = f'CREATE SCHEMA "{schema}"' if action == "create" else f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'
    con.cursor().execute(q)
    con.close()
    return 0


# --- diff ----------------------------------------------------------------

def load(path: str) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def strip_extensions(rec: Dict[str, Any], extensions: List[str]) -> Tuple[Dict[str, Any], List[str]]:
    """Removes parley's extension fields; returns those it did not find."""
    rec = dict(rec)
    missing = []
    for ext in extensions:
        if "headers" in rec and isinstance(rec["headers"], list):
            hs = [h for h in rec["headers"] if h[0] != ext]
            if len(hs) < len(rec["headers"]):
                rec["headers"] = hs
                continue
        if "headers" in rec and isinstance(rec["headers"], dict) and ext in rec["headers"]:
            # AMQP: parley's header table holds parley-event-id where
            # Rasa's is empty; without it the two tables are equal.
            rec["headers"] = {k: v for k, v in rec["headers"].items() if k != ext}
            continue
        if ext in rec and rec[ext] not in (None, ""):
            rec[ext] = None
            continue
        missing.append(ext)
    return rec, missing


def short(v: Any, width: int = 160) -> str:
    s = json.dumps(v, ensure_ascii=True)
    return s if len(s) <= width else s[: width - 3] + "..."


def blank_volatile(rec: Dict[str, Any], fields: List[str]) -> Tuple[Dict[str, Any], List[str]]:
    """Replaces per-message random fields by a presence marker."""
    rec = dict(rec)
    missing = []
    for f in fields:
        if rec.get(f) in (None, ""):
            missing.append(f)
        else:
            rec[f] = "<set>"
    return rec, missing


def diff(rasa_path: str, parley_path: str, extensions: List[str], volatile: List[str], max_shown: int, absent_is: Optional[List[str]] = None) -> int:
    defaults = {f.split("=", 1)[0]: json.loads(f.split("=", 1)[1]) for f in (absent_is or [])}
    rasa, parley = load(rasa_path), load(parley_path)
    problems: List[str] = []
    ext_missing = 0
    samples: Dict[str, Tuple[Any, Any]] = {}
    by_field: Dict[str, List[Any]] = {}  # field -> [count, first record, rasa, parley]
    for i in range(max(len(rasa), len(parley))):
        if i >= len(rasa):
            problems.append(f"record {i + 1}: only parley has it: {short(parley[i])}")
            continue
        if i >= len(parley):
            problems.append(f"record {i + 1}: only rasa has it: {short(rasa[i])}")
            continue
        p = parley[i]
        if extensions and not any(k in p for k in ("columns", "primary_key", "topology")):
            p, missing = strip_extensions(p, extensions)
            ext_missing += bool(missing)
        r = rasa[i]
        for f, v in defaults.items():
            if p.get(f) is None and r.get(f) == v:
                p = dict(p)
                p[f] = v
        if volatile and not any(k in r for k in ("columns", "primary_key", "topology")):
            for f in volatile:
                samples.setdefault(f, (r.get(f), p.get(f)))
            r, _ = blank_volatile(r, volatile)
            p, _ = blank_volatile(p, volatile)
        if r == p:
            continue
        for k in dict.fromkeys(list(r) + list(p)):
            if r.get(k) != p.get(k):
                if k not in by_field:
                    msg_no = i + 1 - sum(1 for x in rasa[:i] if any(m in x for m in ("columns", "primary_key", "topology")))
                    by_field[k] = [0, msg_no, r.get(k), p.get(k)]
                by_field[k][0] += 1
    meta = ("columns", "primary_key", "topology")
    n = min(sum(1 for r in rasa if not any(k in r for k in meta)), sum(1 for r in parley if not any(k in r for k in meta)))
    for k, (count, first, rv, pv) in by_field.items():
        problems.insert(0, f"field {k} differs in {count} of {n} messages (first: message {first}: rasa {short(rv)}, parley {short(pv)})")
    if len(rasa) != len(parley):
        problems.insert(0, f"rasa has {len(rasa)} records, parley {len(parley)}")
    if extensions:
        if ext_missing:
            problems.append(f"{ext_missing} parley records lack the expected extension field(s) {extensions}")
        else:
            print(f"note: parley adds {', '.join(extensions)} to every message (removed before comparing)")
    for f, v in defaults.items():
        print(f"note: {f} absent on parley's side is taken as {json.dumps(v)}, its AMQP default (amqp091-go does not send the default)")
    for f, (rv, pv) in samples.items():
        print(f"note: {f} is random per message on Rasa's side, so only its presence is compared (first: rasa {short(rv, 60)}, parley {short(pv, 60)})")
    for line in problems[:max_shown]:
        print(line)
    if len(problems) > max_shown:
        print(f"... and {len(problems) - max_shown} more differences")
    return 1 if problems else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sqlite")
    s.add_argument("db")
    s = sub.add_parser("postgres")
    s.add_argument("dsn")
    s.add_argument("schema")
    s = sub.add_parser("kafka")
    s.add_argument("bootstrap")
    s.add_argument("topic")
    s.add_argument("--expect", type=int, default=0)
    s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("amqp")
    s.add_argument("url")
    s.add_argument("queue")
    s.add_argument("--expect", type=int, default=0)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--check-exchange", metavar="NAME")
    s = sub.add_parser("diff")
    s.add_argument("rasa")
    s.add_argument("parley")
    s.add_argument("--extension", action="append", default=[], help="a field only parley sets (checked present, then removed)")
    s.add_argument("--volatile", action="append", default=[], help="a field both set to a per-message random value (presence compared)")
    s.add_argument("--absent-is", action="append", default=[], metavar="FIELD=JSON",
                   help="an AMQP property parley cannot send at its default value (amqp091-go omits priority 0): absent on parley's side counts as equal to that value")
    s.add_argument("--max", type=int, default=12, help="differences to print (default 12)")
    s = sub.add_parser("kafka-topic")
    s.add_argument("bootstrap")
    s.add_argument("action", choices=["create", "delete"])
    s.add_argument("topic")
    s.add_argument("--partitions", type=int, default=1)
    s = sub.add_parser("pg-schema")
    s.add_argument("dsn")
    s.add_argument("action", choices=["create", "drop"])
    s.add_argument("schema")
    s = sub.add_parser("amqp-delete")
    s.add_argument("url")
    s.add_argument("--queue", action="append", default=[])
    s.add_argument("--exchange", action="append", default=[])
    a = p.parse_args()
    if a.cmd == "amqp-delete":
        return asyncio.run(amqp_delete(a.url, a.queue, a.exchange))
    if a.cmd == "kafka-topic":
        return kafka_topic(a.bootstrap, a.action, a.topic, a.partitions)
    if a.cmd == "pg-schema":
        return pg_schema(a.dsn, a.action, a.schema)
    if a.cmd == "sqlite":
        return capture_sqlite(a.db)
    if a.cmd == "postgres":
        return capture_postgres(a.dsn, a.schema)
    if a.cmd == "kafka":
        return capture_kafka(a.bootstrap, a.topic, a.expect, a.timeout)
    if a.cmd == "amqp":
        return asyncio.run(capture_amqp(a.url, a.queue, a.expect, a.timeout, a.check_exchange))
    return diff(a.rasa, a.parley, a.extension, a.volatile, a.max, a.absent_is)


if __name__ == "__main__":
    sys.exit(main())
