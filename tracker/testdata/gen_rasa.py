#!/usr/bin/env python3
"""Generates tracker/testdata/rasa_states.json and rasa_sql.json with Rasa 3.6.21.

The Go tests compare parley against what Rasa itself computes, so the
expected values come from Rasa's own code, not from a reading of it:

  rasa_states.json  per case: the events (Rasa's canonical as_dict form),
                    an optional `until`, and for every include_events value
                    the exact bytes Rasa's HTTP API returns for the tracker
                    (DialogueStateTracker.current_state serialized by ujson,
                    as sanic's response.json does).
  rasa_sql.json     the DDL SQLAlchemy emits for Rasa's SQLTrackerStore on
                    SQLite and PostgreSQL, and the rows SQLTrackerStore.save
                    wrote for a few conversations (read back from SQLite).

Run with a Python that has Rasa 3.6.21's dependencies (ujson, SQLAlchemy
1.4, ...) and RASA_SRC pointing at the unpacked wheel:

  RASA_SRC=/tmp/research/src /tmp/research/venv/bin/python gen_rasa.py
"""
import asyncio
import json
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.environ.get("RASA_SRC", "/tmp/research/src"))
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

import ujson  # noqa: E402
from rasa.shared.core.events import deserialise_events  # noqa: E402
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "internal", "fixtures", "data", "events.ndjson")


def act(ts, name, **kw):
    return dict({"event": "action", "timestamp": ts, "name": name}, **kw)


def user(ts, text, intent=None, entities=None, channel="rest", **kw):
    pd = {"intent": {"name": intent, "confidence": 0.9} if intent else {}, "text": text}
    if entities is not None:
        pd["entities"] = entities
    return dict({"event": "user", "timestamp": ts, "text": text, "parse_data": pd,
                 "input_channel": channel}, **kw)


def ev(ts, typ, **kw):
    return dict({"event": typ, "timestamp": ts}, **kw)


BASE = [
    act(1.0, "action_session_start"),
    ev(1.1, "session_started"),
    act(1.2, "action_listen"),
    user(2.0, "hi", "greet"),
    ev(2.5, "slot", name="s", value=1),
    act(3.0, "utter_a"),
    ev(3.1, "bot", text="hey"),
    act(3.2, "action_listen"),
]

FORM = [
    act(1.0, "action_listen"),
    user(2.0, "book a table", "request_restaurant"),
    act(3.0, "restaurant_form"),
    ev(3.1, "active_loop", name="restaurant_form"),
    ev(3.2, "slot", name="requested_slot", value="cuisine"),
    act(3.3, "action_listen"),
    user(4.0, "italian", "inform", [{"entity": "cuisine", "value": "italian"}]),
    act(5.0, "restaurant_form"),
    ev(5.1, "slot", name="cuisine", value="italian"),
    ev(5.2, "slot", name="requested_slot", value="people"),
    act(5.3, "action_listen"),
]

CASES = [
    ("empty", []),
    ("base", BASE),
    ("undo", BASE + [ev(4.0, "undo")]),
    ("rewind", BASE + [ev(4.0, "rewind")]),
    ("restart", BASE + [ev(4.0, "restart")]),
    ("restart_then_more", BASE + [ev(4.0, "restart"), act(4.1, "action_listen"),
                                  user(5.0, "again", "greet", channel="socketio")]),
    ("two_sessions", BASE + [act(10.0, "action_session_start"), ev(10.1, "session_started"),
                             ev(10.2, "slot", name="t", value=[1, 2.5, None]),
                             act(10.3, "action_listen")]),
    ("form_loop", FORM),
    ("form_loop_rejected", FORM[:6] + [
        user(4.0, "what?", "chitchat"),
        ev(4.5, "action_execution_rejected", name="restaurant_form"),
        act(5.0, "utter_chitchat"),
        ev(5.05, "loop_interrupted", is_interrupted=True),
        act(5.1, "restaurant_form"),
        act(5.3, "action_listen"),
    ]),
    ("form_deactivated", FORM + [ev(6.0, "active_loop", name=None), act(6.1, "action_listen")]),
    ("legacy_form", [act(1.0, "action_listen"), user(2.0, "x", "i"), act(3.0, "f"),
                     ev(3.1, "form", name="f"), ev(3.2, "form_validation", validate=False)]),
    ("loop_rejected_flags", [act(1.0, "action_listen"), user(2.0, "x", "i"),
                             ev(3.0, "active_loop", name="f"),
                             ev(3.1, "action_execution_rejected", name="f"),
                             ev(3.2, "loop_interrupted", is_interrupted=True)]),
    ("entities", [act(1.0, "action_listen"),
                  user(2.0, "to paris", "inform", [{"entity": "city", "value": "paris"}]),
                  ev(2.1, "entities", entities=[{"entity": "city", "value": "paris"},
                                                {"entity": "date", "value": "today"}]),
                  ev(2.2, "user_featurization", use_text_for_featurization=True),
                  ev(2.3, "active_loop", name="trip_form")]),
    ("entities_empty_user", [act(1.0, "action_listen"), user(2.0, "hello", "greet"),
                             ev(2.1, "entities", entities=[{"entity": "x", "value": 1}])]),
    ("entities_ignored_after_action", [act(1.0, "action_listen"), user(2.0, "a", "b"),
                                       act(2.5, "utter_b"),
                                       ev(2.6, "entities", entities=[{"entity": "x", "value": 1}])]),
    ("followup", [act(1.0, "action_listen"), ev(1.5, "followup", name="action_x")]),
    ("followup_cleared", [ev(1.5, "followup", name="action_x"), act(2.0, "action_x")]),
    ("pause", [act(1.0, "action_listen"), ev(1.5, "pause")]),
    ("pause_resume", [ev(1.5, "pause"), ev(1.6, "resume")]),
    ("reset_slots", [ev(1.0, "slot", name="a", value="x"), ev(1.1, "slot", name="b", value=2),
                     ev(1.2, "reset_slots"), ev(1.3, "slot", name="b", value=3)]),
    ("e2e_action_text", [act(1.0, None, action_text="Sure, here you go"),
                         ev(1.1, "bot", text="Sure")]),
    ("user_no_channel", [{"event": "user", "timestamp": 1.0, "text": "t",
                          "parse_data": {"intent": {"name": "i"}}}]),
    ("escaping", [ev(1.0, "slot", name="url", value="https://example.com/a/b"),
                  ev(1.1, "slot", name="text", value="Grüße 😀 \"q\" \\ \n\t\x01"),
                  ev(1.2, "slot", name="small", value=1e-7),
                  ev(1.3, "slot", name="big", value=1e22),
                  ev(1.4, "slot", name="bigint", value=123456789012345678901234567890),
                  ev(1.5, "slot", name="obj", value={"z": 1, "a": [True, False, None]})]),
    ("undo_twice", BASE + [ev(4.0, "undo"), ev(4.1, "undo")]),
    ("rewind_then_user", BASE + [ev(4.0, "rewind"), user(4.1, "hello again", "greet")]),
    ("reminders_agent_export", [ev(1.0, "reminder", intent="i", date_time="2024-01-01T10:00:00+00:00",
                                   name="r", kill_on_user_msg=True),
                                ev(1.1, "cancel_reminder", name="r"),
                                ev(1.2, "agent", text="hi", data=None),
                                ev(1.3, "export")]),
]

UNTIL = [
    ("base", 2.5),
    ("base", 0.5),
    ("base", 100.0),
    ("undo", 3.5),
    ("rewind", 4.0),
    ("two_sessions", 10.15),
    ("form_loop", 5.0),
    ("entities", 2.05),
    ("form_loop_rejected", 5.05),
]


def fixture_cases():
    by_sender = {}
    with open(FIXTURES, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            sender = d.pop("sender_id")
            by_sender.setdefault(sender, []).append(d)
    return [("fixture:" + s, evs) for s, evs in by_sender.items()]


def canonical(events):
    return [e.as_dict() for e in deserialise_events(events)]


def states(sender, events, until=None):
    tracker = DialogueStateTracker.from_dict(sender, events, None)
    if until is not None:
        tracker = tracker.travel_back_in_time(until)
    return {v.name: ujson.dumps(tracker.current_state(v)) for v in EventVerbosity}


def gen_states():
    out = []
    cases = CASES + fixture_cases()
    by_name = {}
    for name, events in cases:
        if name.startswith("fixture:"):
            sender = name[len("fixture:"):]
        else:
            sender = "conv/" + name if name == "base" else "c1"
        evs = canonical(events)
        by_name[name] = (sender, evs)
        out.append({"name": name, "sender_id": sender, "events": evs, "states": states(sender, evs)})
    for name, until in UNTIL:
        sender, evs = by_name[name]
        out.append({"name": f"{name}@until={until}", "sender_id": sender, "events": evs,
                    "until": until, "states": states(sender, evs, until)})
    return out


def gen_sql():
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    table = SQLTrackerStore.SQLEvent.__table__
    ddl = {}
    for name, dialect in (("sqlite", sqlite_dialect.dialect()), ("postgresql", postgresql.dialect())):
        stmts = [str(CreateTable(table).compile(dialect=dialect)).strip()]
        stmts += [str(CreateIndex(ix).compile(dialect=dialect)).strip() for ix in table.indexes]
        ddl[name] = stmts

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rasa.db")
        store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=path)
        conversations = [("c1", BASE), ("conv/form", FORM)] + [
            (name[len("fixture:"):], evs) for name, evs in fixture_cases()]
        for sender, events in conversations:
            tracker = DialogueStateTracker.from_dict(sender, events, None)
            asyncio.run(store.save(tracker))
        conn = sqlite3.connect(path)
        rows = [dict(zip(("id", "sender_id", "type_name", "timestamp", "intent_name", "action_name", "data"), r))
                for r in conn.execute("SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id")]
        conn.close()
    return {"ddl": ddl, "rows": rows}


def main():
    with open(os.path.join(HERE, "rasa_states.json"), "w", encoding="utf-8") as f:
        json.dump(gen_states(), f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "rasa_sql.json"), "w", encoding="utf-8") as f:
        json.dump(gen_sql(), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
