#!/usr/bin/env python3
"""Writes canonical.tsv: an event dict as posted, then what Rasa 3.6.21 makes
of it, json.dumps(Event.from_parameters(d).as_dict()), or "!error" when
Rasa's classes raise. time.time() is pinned to NOW and uuid.uuid1() to a
fixed value so the output is stable. Run with the Rasa venv of
bench/rasa/setup.sh, from this directory:

    $(../../bench/rasa/setup.sh) gen_canonical.py > canonical.tsv
"""
import json
import time
import uuid
import warnings

warnings.simplefilter("ignore")
NOW = 1700000123.25
time.time = lambda: NOW
uuid.uuid1 = lambda *a, **k: uuid.UUID("9f2d5c9e-8a3b-11ee-b9d1-0242ac120002")

from rasa.shared.core.events import Event  # noqa: E402

pd = {"intent": {"name": "greet", "confidence": 0.9}, "entities": [], "text": "hi"}
cases = [
    # user
    {"event": "user", "timestamp": 1.5, "text": "hi", "parse_data": pd},
    {"event": "user", "text": "hi", "parse_data": {}, "input_channel": "rest", "message_id": "m1"},
    {"event": "user", "timestamp": 2, "text": "hi", "parse_data": pd, "metadata": {"a": 1}, "extra": True},
    {"event": "user", "timestamp": 2, "parse_data": {"intent": None, "entities": None, "zzz": [1], "text": "other", "metadata": {"x": 1}}},
    {"event": "user", "timestamp": 2, "text": None, "parse_data": {"entities": [{"entity": "e", "value": 1}], "intent_ranking": []}, "metadata": {}},
    {"event": "user", "timestamp": 0, "text": "zero ts", "parse_data": {}},
    {"event": "user", "timestamp": None, "text": "null ts", "parse_data": {}, "metadata": None},
    {"metadata": {"m": 1}, "parse_data": {"text": "x"}, "event": "user", "timestamp": 3.0},
    {"event": "user", "timestamp": 1},
    # bot
    {"event": "bot", "timestamp": 1.0, "text": "hello"},
    {"event": "bot", "timestamp": 1.0, "text": "hello", "data": {"buttons": []}, "metadata": {"utter_action": "utter_greet"}},
    {"event": "bot", "timestamp": 1.0, "data": {}, "metadata": {}, "junk": 1},
    {"event": "bot", "timestamp": 1.0, "text": "x", "data": None},
    # action
    {"event": "action", "timestamp": 1.0, "name": "action_listen"},
    {"event": "action", "timestamp": 1.0, "name": "utter_x", "policy": "RulePolicy", "confidence": 1, "hide_rule_turn": True, "metadata": {"k": "v"}},
    {"event": "action", "timestamp": 1.0, "action_text": "e2e"},
    {"event": "action", "timestamp": 1.0, "name": "a", "hide_rule_turn": None},
    {"event": "action", "timestamp": 1.0},
    {"event": "action", "timestamp": 1.0, "name": None, "action_text": None},
    # slot
    {"event": "slot", "timestamp": 1.0, "name": "city", "value": "Berlin"},
    {"event": "slot", "timestamp": 1.0, "value": [1, 2], "name": "l", "metadata": {"s": 1}},
    {"event": "slot", "timestamp": 1.0, "name": "n"},
    # simple ones
    {"event": "restart", "timestamp": 1.0, "junk": 1},
    {"event": "rewind", "timestamp": 1.0},
    {"event": "undo"},
    {"event": "reset_slots", "timestamp": 1.0, "metadata": {"x": None}},
    {"event": "pause", "timestamp": 1.0},
    {"event": "resume", "timestamp": 1.0},
    {"event": "session_started", "timestamp": 1.0, "metadata": {}},
    {"event": "export", "timestamp": 1.0, "path": "stories.yml"},
    {"event": "followup", "timestamp": 1.0, "name": "action_x"},
    {"event": "followup", "timestamp": 1.0},
    # reminders
    {"event": "reminder", "timestamp": 1.0, "intent": "remind", "date_time": "2018-09-03T11:41:10.128172+02:00", "entities": None, "name": "r1", "kill_on_user_msg": False},
    {"event": "reminder", "timestamp": 1.0, "intent": "remind", "date_time": "2018-09-03T11:41:10Z"},
    {"event": "reminder", "timestamp": 1.0, "date_time": "2018-09-03", "kill_on_user_msg": None, "name": None},
    {"event": "reminder", "timestamp": 1.0, "date_time": "2018-09-03 11:41:10.5-0530", "name": "r"},
    {"event": "cancel_reminder", "timestamp": 1.0, "name": "r1", "intent": "i", "entities": [{"entity": "e", "value": 1}]},
    {"event": "cancel_reminder", "timestamp": 1.0, "metadata": {"c": 1}},
    # agent
    {"event": "agent", "timestamp": 1.0, "text": "a", "data": [1]},
    {"event": "agent", "timestamp": 1.0},
    # loops
    {"event": "active_loop", "timestamp": 1.0, "name": "f"},
    {"event": "active_loop", "timestamp": 1.0, "name": None},
    {"event": "form", "timestamp": 1.0, "name": "f", "metadata": {"legacy": True}},
    {"event": "form", "timestamp": 1.0},
    {"event": "loop_interrupted", "timestamp": 1.0, "is_interrupted": True},
    {"event": "loop_interrupted", "timestamp": 1.0},
    {"event": "loop_interrupted", "timestamp": 1.0, "is_interrupted": None},
    {"event": "form_validation", "timestamp": 1.0, "validate": False},
    {"event": "form_validation", "timestamp": 1.0, "validate": True},
    {"event": "form_validation", "timestamp": 1.0},
    {"event": "form_validation", "timestamp": 1.0, "validate": None},
    {"event": "form_validation", "timestamp": 1.0, "validate": "yes"},
    {"event": "action_execution_rejected", "timestamp": 1.0, "name": "f", "policy": "p", "confidence": 0.5, "x": 1},
    {"event": "action_execution_rejected", "timestamp": 1.0, "name": "f"},
    {"event": "user_featurization", "timestamp": 1.0, "use_text_for_featurization": False},
    {"event": "user_featurization", "timestamp": 1.0},
    {"event": "entities", "timestamp": 1.0, "entities": [{"entity": "e", "value": "v", "start": 0}]},
    {"event": "entities", "timestamp": 1.0},
    # numbers and strings kept exactly
    {"event": "slot", "timestamp": 1e21, "name": "big", "value": 2 ** 63},
    {"event": "slot", "timestamp": 1700000000.123456, "name": "u", "value": "\u2028 \U0001F600 é"},
    {"event": "slot", "timestamp": -0.0, "name": "neg zero ts", "value": -0.0},
    # unknown types
    {"event": "stack", "timestamp": 1.0, "update": "[]"},
    {"event": "nope", "timestamp": 1.0},
]

for c in cases:
    try:
        ev = Event.from_parameters(c)
        out = json.dumps(ev.as_dict()) if ev is not None else "!error"
    except Exception:
        out = "!error"
    print(json.dumps(json.dumps(c)) + "\t" + json.dumps(out))
