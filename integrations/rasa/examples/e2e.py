"""The real-bot end to end of issue #16 (run by e2e.sh, in the full Rasa venv).

Run 1: `rasa run --enable-api` with parley_rasa.ParleyEventBroker, a real
`parley serve` publishing to Kafka topic A, stopped (SIGTERM) during
conversations 10-14 and started again for 15-19. Run 2: the same model with
Rasa's own `type: kafka` broker on topic B. The same 20 conversations go
through Rasa's REST channel each time; then both topics are read and each
conversation's events compared (types, texts, intents, entities, slots,
actions, policies: everything but timestamps and message ids).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CITIES = ["Berlin", "Paris", "Lisbon", "Tokyo", "Nairobi"]
TOKEN = "e2e-" + uuid.uuid4().hex


def log(msg: str) -> None:
    print(f"rasa-e2e: {msg}", file=sys.stderr, flush=True)


def wait_for(what, cond, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"rasa-e2e: FAIL: timed out waiting for {what}")
        time.sleep(0.2)


def http(method, url, body=None, headers=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
        return r.status, r.read()


def answers(url):
    def ok():
        try:
            return http("GET", url, timeout=2)[0] == 200
        except (OSError, urllib.error.URLError):
            return False

    return ok


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conversation(i):
    city = CITIES[i % len(CITIES)]
    return f"e2e-conv-{i:02d}", [
        ("hello", ["Hello! Which city are you in?"]),
        (f"I live in {city}", [f"{city}, a fine place. Anything else?"]),
        ("bye", ["Goodbye!"]),
    ]


def run_bot(a, work: Path, label: str, endpoints: str, phases) -> list:
    """Starts rasa run with endpoints, holds the conversations, stops it.

    phases: (conversation numbers, a function to call first) in turn; the
    seconds each phase's conversations took are returned."""
    (work / f"{label}-endpoints.yml").write_text(endpoints)
    port = free_port()
    env = dict(os.environ, PARLEY_TOKEN=TOKEN, RASA_TELEMETRY_ENABLED="false")
    out = open(work / f"{label}-rasa.log", "wb")  # noqa: SIM115
    rasa = subprocess.Popen(
        [
            a.rasa,
            "run",
            "--enable-api",
            "-m",
            a.model,
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "--endpoints",
            f"{label}-endpoints.yml",
            "--credentials",
            str(a.bot / "credentials.yml"),
        ],
        cwd=work,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"rasa run ({label}) to load the model", answers(base + "/status"), 180)

        def talk(i):
            sender, turns = conversation(i)
            for text, want in turns:
                _, body = http(
                    "POST", base + "/webhooks/rest/webhook", {"sender": sender, "message": text}
                )
                got = [m.get("text") for m in json.loads(body)]
                if got != want:
                    raise SystemExit(
                        f"rasa-e2e: FAIL: {label} {sender}: {text!r} -> {got}, want {want}"
                    )

        took = []
        for numbers, before in phases:
            before()
            start = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(talk, numbers))
            took.append(round(time.monotonic() - start, 2))
    finally:
        rasa.send_signal(signal.SIGTERM)  # Rasa closes its event broker
        try:
            rasa.wait(60)
        except subprocess.TimeoutExpired:
            rasa.kill()
            rasa.wait()
    return took


def read_topic(seeds, topic):
    """Every record of topic, to the high watermarks."""
    c = Consumer(
        {
            "bootstrap.servers": seeds,
            "group.id": "e2e-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
        }
    )
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out, pos = [], dict.fromkeys(parts, 0)
        deadline = time.monotonic() + 60
        while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            out.append(m.value())
            pos[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def normalize(ev: dict) -> dict:
    """An event without what differs between two runs by nature."""
    ev = dict(ev)
    ev.pop("timestamp", None)
    ev.pop("message_id", None)
    if isinstance(ev.get("parse_data"), dict):
        ev["parse_data"] = {k: v for k, v in ev["parse_data"].items() if k != "message_id"}
    return ev


def by_conversation(values):
    out = defaultdict(list)
    for v in values:
        ev = json.loads(v)
        out[ev["sender_id"]].append(normalize(ev))
    return dict(out)


def noop() -> None:
    pass


class Parley:
    """parley serve, stopped (SIGTERM) and started again in one directory."""

    def __init__(self, binary, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = open(self.workdir / f"parley-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--addr", f"127.0.0.1:{self.port}", "--auth-token", TOKEN],
            cwd=self.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        wait_for("parley serve", answers(self.url + "/health"), 60)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
            self.proc = None


def spool_depth(parley_url) -> float:
    _, body = http("GET", parley_url + "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("parley_spool_depth_events"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--parley", required=True)
    p.add_argument("--rasa", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--bot", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--seeds", required=True)
    p.add_argument("--conversations", type=int, default=20)
    a = p.parse_args()

    run_id = uuid.uuid4().hex[:8]
    topic_parley, topic_rasa = f"e2e-parley-{run_id}", f"e2e-rasa-{run_id}"
    admin = AdminClient({"bootstrap.servers": a.seeds})
    for t in (topic_parley, topic_rasa):
        admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1)])[t].result(30)
    try:
        # Run 1: Rasa -> parley_rasa -> parley serve -> Kafka.
        pwork = a.work / "parley-serve"
        pwork.mkdir(parents=True)
        (pwork / "endpoints.yml").write_text(
            f"event_broker:\n  type: kafka\n  url: {a.seeds}\n  topic: {topic_parley}\n"
            "  security_protocol: PLAINTEXT\n  partition_by_sender: true\n"
        )
        parley = Parley(a.parley, pwork)
        parley.start()
        try:
            # parley is stopped for conversations 10-14 (Rasa must answer as
            # usual, the plugin buffers) and back for 15-19.
            t1 = run_bot(
                a,
                a.work,
                "plugin",
                (
                    "event_broker:\n  type: parley_rasa.ParleyEventBroker\n"
                    f"  url: {parley.url}\n  token: ${{PARLEY_TOKEN}}\n"
                    "  buffer_dir: plugin-buffer\n"
                ),
                [
                    (range(0, 10), noop),
                    (range(10, 15), parley.stop),
                    (range(15, a.conversations), parley.start),
                ],
            )
            wait_for(
                "parley to deliver every event to Kafka",
                lambda: spool_depth(parley.url) == 0,
                60,
            )
        finally:
            parley.stop()
        rasa_log = (a.work / "plugin-rasa.log").read_text(errors="replace")
        closed = [ln for ln in rasa_log.splitlines() if "parley_rasa" in ln and "closed;" in ln]
        if not closed or "buffered=0" not in closed[-1] or "retries=" not in closed[-1]:
            raise SystemExit(
                "rasa-e2e: FAIL: the plugin did not retry during the outage and close "
                "with an empty buffer:\n" + "\n".join(closed or rasa_log.splitlines()[-30:])
            )
        log("plugin " + closed[-1].split("closed; ", 1)[1])

        # Run 2: Rasa's own Kafka broker.
        t2 = run_bot(
            a,
            a.work,
            "kafka",
            (
                f"event_broker:\n  type: kafka\n  url: {a.seeds}\n  topic: {topic_rasa}\n"
                "  security_protocol: PLAINTEXT\n  partition_by_sender: true\n"
            ),
            [(range(0, 10), noop), (range(10, 15), noop), (range(15, a.conversations), noop)],
        )

        via_parley = by_conversation(read_topic(a.seeds, topic_parley))
        via_rasa = by_conversation(read_topic(a.seeds, topic_rasa))
    finally:
        admin.delete_topics([topic_parley, topic_rasa])

    senders = sorted(conversation(i)[0] for i in range(a.conversations))
    fails = []
    if sorted(via_parley) != senders:
        fails.append(f"conversations via parley: {sorted(via_parley)}")
    if sorted(via_rasa) != senders:
        fails.append(f"conversations via Rasa's Kafka broker: {sorted(via_rasa)}")
    for s in senders:
        if via_parley.get(s) != via_rasa.get(s):
            fails.append(
                f"{s}: the event sequences differ:\n  parley: "
                + json.dumps(via_parley.get(s))[:3000]
                + "\n  kafka:  "
                + json.dumps(via_rasa.get(s))[:3000]
            )
        else:
            slots = [e for e in via_parley[s] if e["event"] == "slot"]
            if not any(e.get("name") == "city" and e.get("value") in CITIES for e in slots):
                fails.append(f"{s}: no city slot set: {slots}")
    n1 = sum(len(v) for v in via_parley.values())
    n2 = sum(len(v) for v in via_rasa.values())
    summary = {
        "conversations": a.conversations,
        "events_via_parley": n1,
        "events_via_rasa_kafka": n2,
        # Per phase: conversations 0-9, 10-14 (parley stopped), 15-19.
        "seconds_talking_plugin": t1,
        "seconds_talking_rasa_kafka": t2,
    }
    (a.work / "report.json").write_text(
        json.dumps({"summary": summary, "failures": fails}, indent=1)
    )
    if fails:
        for f in fails:
            log("FAIL: " + f)
        raise SystemExit(1)
    kinds = sorted({e["event"] for evs in via_parley.values() for e in evs})
    log(
        f"PASS: {a.conversations} conversations, {n1} events through parley = {n2} through "
        f"Rasa's Kafka broker, per conversation identical ({', '.join(kinds)}); {summary}"
    )


if __name__ == "__main__":
    main()
