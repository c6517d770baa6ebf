#!/usr/bin/env python3
"""Writes rasa_export.ndjson: each fixture event (internal/fixtures/data/
events.ndjson) as `rasa export` publishes it once stored: loaded by its Rasa
3.6.21 event class, current_state's as_dict, sender_id appended
(rasa/core/exporter.py). Run with the venv of bench/rasa/setup.sh, from
this directory:

    $(../../bench/rasa/setup.sh) gen_rasa_export.py > rasa_export.ndjson
"""
import json
import warnings

warnings.simplefilter("ignore")
from rasa.shared.core.events import Event  # noqa: E402

for line in open("../../internal/fixtures/data/events.ndjson", encoding="utf-8"):
    if not line.strip():
        continue
    d = json.loads(line)
    sender = d.pop("sender_id")
    out = Event.from_parameters(d).as_dict()
    out["sender_id"] = sender
    print(json.dumps(out))
