"""Drive pymapr-kafkarest, unmodified, against parley's Confluent paths.

Usage: pymapr_drive.py BASE_URL TOPIC N
Creates an instance, subscribes, seeks (its positions/ call, with a
trailing slash), reads, seeks to the beginning and reads again, then
deletes the instance. Exits non-zero on any failure.
"""
import json
import sys
import time

from pymapr_kafkarest.kafkarest import MaprKlient

base, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
k = MaprKlient(base, "pymapr-compat", headers={}, topics=[topic], instance="pymapr-1")


def read_all(call, want):
    got, deadline = [], time.time() + 30
    while len(got) < want and time.time() < deadline:
        got += call()
    return got


k.connect()  # GET subscription (404: none yet), then create the instance
k.subscribe()
subs = k._subscription_topics()
assert subs == {"topics": [topic]}, subs
first = read_all(k._records, n)
assert len(first) == n, f"read {len(first)} of {n}"
assert all(r["topic"] == topic and isinstance(r["value"], dict) for r in first), first[0]
# consume(position=...) seeks with POST .../positions/ (trailing slash).
mid = first[n // 2]["offset"]
again = k.consume(position=mid)
again += read_all(k._records, n - n // 2 - len(again))
assert [r["offset"] for r in again] == [r["offset"] for r in first[n // 2:]], again
# consume(seek=...) seeks to the beginning.
restart = k.consume(seek=True)
restart += read_all(k._records, n - len(restart))
assert [r["offset"] for r in restart] == [r["offset"] for r in first], restart
k._instance_delete()
print(json.dumps({"client": "pymapr-kafkarest", "records": len(first), "ok": True}))
