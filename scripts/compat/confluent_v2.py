"""A small client written from Confluent REST Proxy v2's documentation, for
what pymapr-kafkarest and kafka-rest do not do: topic metadata, manual
assignment, binary records, commits with offsets, committed offsets (GET
with a body), seeking to the end, topic_pattern, unsubscribing, Accept
negotiation (406) and Confluent's error type.

Usage: confluent_v2.py BASE_URL TOPIC N
"""
import base64
import json
import sys

import requests

base, topic, n = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
V2 = "application/vnd.kafka.v2+json"
H = {"Content-Type": V2, "Accept": V2}


def check(r, status, what):
    if r.status_code != status:
        sys.exit(f"confluent-v2: {what}: {r.status_code} {r.text}")
    return r


check(requests.get(f"{base}/topics", headers=H), 200, "GET /topics")
assert topic in requests.get(f"{base}/topics", headers=H).json()
t = check(requests.get(f"{base}/topics/{topic}", headers=H), 200, "GET /topics/t").json()
assert t["name"] == topic and t["partitions"], t
parts = check(requests.get(f"{base}/topics/{topic}/partitions", headers=H), 200, "partitions").json()
p = parts[0]["partition"]
bounds = check(requests.get(f"{base}/topics/{topic}/partitions/{p}/offsets", headers=H), 200, "partition offsets").json()
assert bounds["end_offset"] - bounds["beginning_offset"] == n, bounds

r = check(requests.post(f"{base}/consumers/v2docs", headers=H, json={"name": "docs-1", "format": "binary", "auto.offset.reset": "earliest", "auto.commit.enable": "false"}), 200, "create")
inst = r.json()["base_uri"]
tp = {"partitions": [{"topic": topic, "partition": p}]}
check(requests.post(f"{inst}/assignments", headers=H, json=tp), 204, "assign")
assert check(requests.get(f"{inst}/assignments", headers=H), 200, "assignments").json() == tp
check(requests.post(f"{inst}/positions/beginning", headers=H, json=tp), 204, "seek to beginning")
recs = []
while len(recs) < n:
    r = check(requests.get(f"{inst}/records", headers={"Accept": "application/vnd.kafka.binary.v2+json"}, params={"timeout": 2000}), 200, "records")
    assert r.headers["Content-Type"] == "application/vnd.kafka.binary.v2+json", r.headers
    batch = r.json()
    if not batch:
        sys.exit(f"confluent-v2: read {len(recs)} of {n}")
    recs += batch
ev = json.loads(base64.b64decode(recs[0]["value"]))
assert "event" in ev, ev
last = recs[-1]["offset"]
check(requests.post(f"{inst}/offsets", headers=H, json={"offsets": [{"topic": topic, "partition": p, "offset": last}]}), 200, "commit")
c = check(requests.get(f"{inst}/offsets", headers=H, json=tp), 200, "committed offsets").json()
assert c["offsets"][0]["offset"] == last + 1, c
# A commit past the end is refused, naming the range.
r = check(requests.post(f"{inst}/offsets", headers=H, json={"offsets": [{"topic": topic, "partition": p, "offset": last + 5}]}), 409, "commit past the end")
assert r.json()["error_code"] == 40905 and r.headers["Content-Type"] == V2, r.text
check(requests.post(f"{inst}/positions/end", headers=H, json=tp), 204, "seek to end")
assert check(requests.get(f"{inst}/records", headers={"Accept": "application/vnd.kafka.binary.v2+json"}, params={"timeout": 200}), 200, "records at the end").json() == []
# A json reader of a binary consumer: 406, in Confluent's error type.
r = check(requests.get(f"{inst}/records", headers={"Accept": "application/vnd.kafka.json.v2+json"}), 406, "wrong Accept")
assert r.json()["error_code"] == 40601 and r.headers["Content-Type"] == V2, r.text
check(requests.delete(inst, headers=H), 204, "delete")
r = check(requests.get(f"{inst}/records", headers=H), 404, "records of a deleted instance")
assert r.json()["error_code"] == 40403 and r.headers["Content-Type"] == V2, r.text

# A pattern subscription, read back and dropped.
r = check(requests.post(f"{base}/consumers/v2docs", headers=H, json={"name": "docs-2", "format": "json"}), 200, "create")
inst = r.json()["base_uri"]
check(requests.post(f"{inst}/subscription", headers=H, json={"topic_pattern": topic[:4] + ".*"}), 204, "subscribe by pattern")
assert topic in check(requests.get(f"{inst}/subscription", headers=H), 200, "subscription").json()["topics"]
check(requests.delete(f"{inst}/subscription", headers=H), 204, "unsubscribe")
check(requests.delete(inst, headers=H), 204, "delete")
print(json.dumps({"client": "confluent-v2-docs", "records": len(recs), "ok": True}))
