#!/usr/bin/env python3
"""Conversation-API scenarios through Rasa 3.6.21's own code and through
`parley serve`, for scripts/rasa-compare.sh.

    conversations.py rasa SCENARIO OUTDIR [...]    # Rasa's code, in process
    conversations.py http SCENARIO URL OUTDIR      # the same requests to parley
    conversations.py compare RASADIR PARLEYDIR SINCE SCENARIO  # exit 1 on a difference
    conversations.py config SCENARIO OUTDIR        # write the domain file, print model ids

A scenario is a JSON file:

    {"name": "...", "domain": "<domain.yml text, optional>",
     "model_id": "...", "assistant_id": "...",            (optional)
     "steps": [{"method": "POST"|"PUT"|"GET", "conversation": "c1",
                "query": "include_events=ALL",             (optional)
                "body": <JSON> | "raw": "<text>"}]}        (POST/PUT)

The Rasa side runs what the handlers of rasa/server.py run, with Rasa's
functions taken from the installed Rasa's source (Rasa's server and
processor modules need TensorFlow & co. to import, so their functions are
compiled on their own, verbatim, from rasa/server.py, rasa/core/processor.py
and rasa/core/actions/action.py): validate_events_in_request_body,
update_conversation_with_events, the processor's get_tracker /
fetch_tracker_with_initial_session / fetch_full_tracker_with_initial_session
/ _update_tracker_session / _run_action / _log_action_on_tracker, and
ActionSessionStart.run. The stand-ins are only what needs a trained model:
the processor object (tracker store, domain, model ids) and the policy
prediction of action_session_start (no policy, confidence 1.0, as
PolicyPrediction.for_action_name makes it). The tracker store is Rasa's
SQLTrackerStore on SQLite with Rasa's FileEventBroker, the GET bodies are
current_state() through sanic's response.json.

Each side writes OUTDIR/responses.jsonl (status and body per step),
OUTDIR/published.log (the file broker) and OUTDIR/rasa.db (the tracker
store). compare checks the three are identical, after replacing the
timestamps (and reminder names) each side makes up with tokens numbered in
order of appearance, so that where Rasa reuses a timestamp parley must too.
"""
import ast
import asyncio
import json
import os
import re
import sqlite3
import sys
import textwrap
import time
import types
import urllib.error
import urllib.parse
import urllib.request
import warnings

DEFAULT_DOMAIN = """version: "3.1"
slots:
  city:
    type: text
    mappings: [{type: custom}]
  count:
    type: float
    initial_value: 0.0
    mappings: [{type: custom}]
  tags:
    type: list
    mappings: [{type: custom}]
forms:
  restaurant_form:
    required_slots: [city]
"""

METHODS = ("GET", "POST", "PUT")


def load_scenario(path):
    with open(path, encoding="utf-8") as f:
        sc = json.load(f)
    if not isinstance(sc.get("steps"), list):
        raise SystemExit(f"{path}: a scenario needs a list of steps")
    for i, st in enumerate(sc["steps"]):
        if st.get("method") not in METHODS or not st.get("conversation"):
            raise SystemExit(f"{path}: step {i}: needs method (GET, POST, PUT) and conversation")
    sc.setdefault("name", os.path.basename(path))
    sc.setdefault("domain", DEFAULT_DOMAIN)
    return sc


def body_of(step):
    if "raw" in step:
        return step["raw"].encode("utf-8", "surrogatepass")
    if "body" in step:
        return json.dumps(step["body"]).encode("utf-8", "surrogatepass")
    return b""


def path_of(step):
    conv = urllib.parse.quote(step["conversation"], safe="/")
    suffix = "/tracker" if step["method"] == "GET" else "/tracker/events"
    q = step.get("query", "")
    return f"/conversations/{conv}{suffix}" + (f"?{q}" if q else "")


# --- Rasa's code, compiled from its source ----------------------------------


def rasa_functions(module_file, names, cls=None, namespace=None):
    """Compiles functions (or methods of cls) from a Rasa source file, with
    their annotations dropped (they name modules that need TensorFlow)."""
    tree = ast.parse(open(module_file, encoding="utf-8").read())
    body = tree.body
    if cls:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    out = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            for a in node.args.args + node.args.kwonlyargs:
                a.annotation = None
            node.returns = None
            node.decorator_list = []  # staticmethod: the caller wraps
            mod = ast.Module(body=[node], type_ignores=[])
            code = compile(ast.fix_missing_locations(mod), module_file, "exec")
            exec(code, namespace)
            out[node.name] = namespace[node.name]
    missing = set(names) - set(out)
    if missing:
        raise SystemExit(f"{module_file}: {sorted(missing)} not found")
    return out


def run_rasa(sc, outdir):
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    import logging

    import jsonschema
    import structlog
    import rasa
    import rasa.shared.utils.io
    from sanic.response import json_dumps
    from rasa.core.brokers.file import FileEventBroker
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core import events as ev_mod
    from rasa.shared.core.constants import (
        ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME, SESSION_START_METADATA_SLOT)
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted, ActionExecutionRejected, BotUttered, Event, ReminderCancelled,
        ReminderScheduled, SessionStarted, SlotSet, UserUttered)
    from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
    from rasa.shared.utils.schemas.events import EVENTS_SCHEMA

    site = os.path.dirname(rasa.__file__)
    logging.getLogger("rasa").setLevel(logging.CRITICAL)  # not the file broker's logger
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))

    class ErrorResponse(Exception):
        def __init__(self, status, reason, message, details=None, help_url=None):
            super().__init__(message)
            self.status = status

    class HTTPStatus:
        BAD_REQUEST, INTERNAL_SERVER_ERROR = 400, 500

    class Request:
        def __init__(self, step):
            self.body = body_of(step)
            self.args = dict(urllib.parse.parse_qsl(step.get("query", ""), keep_blank_values=True))
            try:
                self.json = json.loads(self.body) if self.body else None
            except ValueError:
                raise ErrorResponse(400, "BadRequest", "Failed when parsing body as json")

    ns = {
        "jsonschema": jsonschema, "EVENTS_SCHEMA": EVENTS_SCHEMA, "ErrorResponse": ErrorResponse,
        "HTTPStatus": HTTPStatus, "_docs": lambda p: p, "rasa": rasa, "EventVerbosity": EventVerbosity,
        "logger": logging.getLogger("rasa-stand-in"), "structlogger": structlog.get_logger(),
        "time": time, "copy": __import__("copy"), "ACTION_LISTEN_NAME": ACTION_LISTEN_NAME,
        "ACTION_SESSION_START_NAME": ACTION_SESSION_START_NAME, "UTTER_PREFIX": "utter_",
        "SESSION_START_METADATA_SLOT": SESSION_START_METADATA_SLOT, "SlotSet": SlotSet,
        "UserUttered": UserUttered, "ActionExecutionRejected": ActionExecutionRejected,
        "BotUttered": BotUttered, "ReminderScheduled": ReminderScheduled,
        "ReminderCancelled": ReminderCancelled, "ActionExecuted": ActionExecuted,
        "SessionStarted": SessionStarted, "Event": Event, "DEFAULT_SENDER_ID": "default",
        "DialogueStateTracker": DialogueStateTracker,
    }
    # rasa.core.actions.action cannot be imported: the names _run_action uses.
    ns["rasa"] = types.SimpleNamespace(
        core=types.SimpleNamespace(actions=types.SimpleNamespace(action=types.SimpleNamespace(
            ActionExecutionRejection=type("ActionExecutionRejection", (Exception,), {})))),
        shared=rasa.shared)
    server_py = os.path.join(site, "server.py")
    fns = rasa_functions(server_py, ["validate_events_in_request_body", "update_conversation_with_events",
                                     "event_verbosity_parameter"], namespace=ns)
    proc = rasa_functions(os.path.join(site, "core", "processor.py"), [
        "get_tracker", "fetch_tracker_with_initial_session", "fetch_full_tracker_with_initial_session",
        "_update_tracker_session", "_run_action", "_log_action_on_tracker", "_has_session_expired",
        "should_predict_another_action", "_log_slots", "execute_side_effects", "_send_bot_messages",
        "_schedule_reminders", "_cancel_reminders"], cls="MessageProcessor", namespace=ns)
    act = rasa_functions(os.path.join(site, "core", "actions", "action.py"),
                         ["run", "_slot_set_events_from_tracker", "name"], cls="ActionSessionStart", namespace=dict(ns))
    succ = rasa_functions(os.path.join(site, "core", "actions", "action.py"),
                          ["event_for_successful_execution"], cls="Action", namespace=dict(ns))

    class ActionSessionStart:
        name = act["name"]
        run = act["run"]
        _slot_set_events_from_tracker = staticmethod(act["_slot_set_events_from_tracker"])
        event_for_successful_execution = succ["event_for_successful_execution"]

    class Prediction:
        """PolicyPrediction.for_action_name(domain, name): no policy,
        max_confidence 1.0, no events or metadata."""
        events, policy_name, max_confidence, hide_rule_turn, action_metadata = [], None, 1.0, False, None

        @staticmethod
        def for_action_name(domain, action_name):
            return Prediction()

    ns["PolicyPrediction"] = Prediction

    class Processor:
        """The stand-in for MessageProcessor: its attributes; its methods are Rasa's."""

        def __init__(self, store, domain):
            self.tracker_store, self.domain, self.nlg = store, domain, None
            self.model_metadata = types.SimpleNamespace(model_id=sc.get("model_id"), assistant_id=sc.get("assistant_id"))

        def _get_action(self, name):
            assert name == ACTION_SESSION_START_NAME, name
            return ActionSessionStart()

    for k, f in proc.items():
        setattr(Processor, k, staticmethod(f) if k in ("should_predict_another_action", "_log_slots", "_send_bot_messages", "_cancel_reminders") else f)

    domain = Domain.from_yaml(sc["domain"])
    os.makedirs(outdir, exist_ok=True)
    outdir = os.path.abspath(outdir)
    # An export event makes Rasa write a story file to its working directory.
    os.chdir(outdir)
    # FileEventBroker adds a handler to one shared logger: a second broker in
    # this process would also write to the first one's file.
    shared = logging.getLogger("event-logger")
    for h in list(shared.handlers):
        shared.removeHandler(h)
        h.close()
    broker = FileEventBroker(os.path.join(outdir, "published.log"))
    store = SQLTrackerStore(domain, dialect="sqlite", db=os.path.join(outdir, "rasa.db"), event_broker=broker)
    processor = Processor(store, domain)
    validate, update, verbosity_of = (fns["validate_events_in_request_body"], fns["update_conversation_with_events"],
                                      fns["event_verbosity_parameter"])

    # The handlers of rasa/server.py: append_events, replace_events,
    # retrieve_tracker (the try/except and status codes as there).
    async def append(req, cid):
        validate(req)
        verbosity = verbosity_of(req, EventVerbosity.AFTER_RESTART)
        try:
            events = req.json if isinstance(req.json, list) else [req.json]
            events = [e for e in (Event.from_parameters(e) for e in events) if e]
            if not events:
                raise ErrorResponse(400, "BadRequest", "Couldn't extract a proper event from the request body.")
            tracker = await update(cid, processor, domain, events)
            await store.save(tracker)
            return 200, tracker.current_state(verbosity)
        except Exception:
            return 500, None

    async def replace(req, cid):
        validate(req)
        verbosity = verbosity_of(req, EventVerbosity.AFTER_RESTART)
        try:
            tracker = DialogueStateTracker.from_dict(cid, req.json, domain.slots)
            await store.save(tracker)
            return 200, tracker.current_state(verbosity)
        except Exception:
            return 500, None

    async def retrieve(req, cid):
        verbosity = verbosity_of(req, EventVerbosity.AFTER_RESTART)
        until = req.args.get("until")
        try:
            until = float(until) if until is not None else None
        except ValueError:
            until = None
        tracker = await processor.fetch_full_tracker_with_initial_session(cid)
        try:
            if until is not None:
                tracker = tracker.travel_back_in_time(until)
            return 200, tracker.current_state(verbosity)
        except Exception:
            return 500, None

    handlers = {"POST": append, "PUT": replace, "GET": retrieve}
    log = os.path.join(outdir, "published.log")

    def counts(cid):
        """This conversation's rows and published events so far."""
        con = sqlite3.connect(os.path.join(outdir, "rasa.db"))
        rows = con.execute("SELECT COUNT(*) FROM events WHERE sender_id = ?", (cid,)).fetchone()[0]
        con.close()
        pub = 0
        if os.path.exists(log):
            pub = sum(1 for l in open(log, encoding="utf-8", errors="surrogateescape") if l.strip() and json.loads(l).get("sender_id") == cid)
        return rows, pub

    with open(os.path.join(outdir, "responses.jsonl"), "w", encoding="utf-8") as out:
        for step in sc["steps"]:
            rec = {}
            cid = step["conversation"]
            if step["method"] == "PUT" and asyncio.run(store.retrieve_full_tracker(cid)) is not None:
                # Rasa appends where parley replaces (a documented difference):
                # the conversation is compared up to here.
                rec["replaces"] = counts(cid)
            try:
                req = Request(step)
                status, state = asyncio.run(handlers[step["method"]](req, cid))
            except ErrorResponse as e:
                status, state = e.status, None
            rec.update(status=status, body=json_dumps(state) if state is not None else None)
            out.write(json.dumps(rec) + "\n")


# --- parley, over HTTP -------------------------------------------------------


def run_http(sc, url, outdir):
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "responses.jsonl"), "w", encoding="utf-8") as out:
        for step in sc["steps"]:
            data = body_of(step) if step["method"] != "GET" else None
            req = urllib.request.Request(url + path_of(step), data=data, method=step["method"],
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    status, body = resp.status, resp.read().decode("utf-8", "surrogateescape")
            except urllib.error.HTTPError as e:
                status, body = e.code, e.read().decode("utf-8", "replace")
            out.write(json.dumps({"status": status, "body": body}) + "\n")


# --- comparison --------------------------------------------------------------

NUMBER = re.compile(r'-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')
UUID1 = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}')


class Tokens:
    """Replaces made-up values with tokens in order of appearance: numbers
    at or after the run's start (timestamps of now) and uuid1 strings
    (reminder names)."""

    def __init__(self, since):
        self.since, self.seen = since, {}

    def _tok(self, key, kind):
        if key not in self.seen:
            self.seen[key] = f"<{kind}{len(self.seen)}>"
        return self.seen[key]

    def text(self, s):
        if s is None:
            return None

        def num(m):
            try:
                f = float(m.group(0))
            except ValueError:
                return m.group(0)
            if self.since <= f < self.since + 86400:
                return self._tok(f, "now")
            return m.group(0)

        s = UUID1.sub(lambda m: self._tok(m.group(0), "uuid"), s)
        # Only numbers that stand alone (not inside strings or names).
        return re.sub(r'(?<=[:\[, ])' + NUMBER.pattern + r'(?=[,}\] ])', num, s)

    def names(self, s):
        return UUID1.sub(lambda m: self._tok(m.group(0), "uuid"), s) if s else s

    def value(self, v):
        if isinstance(v, float) and self.since <= v < self.since + 86400:
            return self._tok(v, "now")
        return v


def side(d, since):
    t = Tokens(since)
    resp = []
    for line in open(os.path.join(d, "responses.jsonl"), encoding="utf-8"):
        r = json.loads(line)
        resp.append((r["status"], t.text(r["body"]) if r["status"] == 200 else r["body"], r.get("replaces")))
    pub = []
    p = os.path.join(d, "published.log")
    if os.path.exists(p):
        pub = [(json.loads(l).get("sender_id"), t.text(l))
               for l in open(p, encoding="utf-8", errors="surrogateescape").read().split("\n") if l]
    rows = []
    db = os.path.join(d, "rasa.db")
    if os.path.exists(db):
        con = sqlite3.connect(db)
        try:
            cur = con.execute("SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id")
            rows = [(r[0], r[1], t.value(r[2]), t.names(r[3]), t.names(r[4]), t.text(r[5])) for r in cur]
        except sqlite3.OperationalError:
            rows = []
        con.close()
    return resp, pub, rows


# Rasa 200, parley 400: the documented differences where parley refuses
# what Rasa stores (its error message names why): lone surrogates, reminder
# dates that are not ISO 8601, timestamps outside years 1 to 9999.
REFUSED_ON_PURPOSE = re.compile(r"surrogate|date_time|years 1 to 9999")


def compare(rasa_dir, parley_dir, since, steps):
    r_resp, r_pub, r_rows = side(rasa_dir, since)
    p_resp, p_pub, p_rows = side(parley_dir, since)
    diffs = []
    # Conversations compared no further after a documented difference
    # changed what each side stores: conversation -> published events
    # still comparable (None: none of its rows or events).
    diverged = {}
    for i, (a, b) in enumerate(zip(r_resp, p_resp)):
        cid = steps[i]["conversation"]
        if cid in diverged:
            continue
        if a[2] is not None:
            diverged[cid] = a[2][1]
            if a[0] == b[0] == 200 and a[1] != b[1]:
                diffs.append(f"step {i}: PUT body\n  Rasa   {a[1]}\n  parley {b[1]}")
            continue
        if a[0] != b[0]:
            if a[0] == 500 and b[0] == 400:
                continue  # Rasa fails on a body its classes cannot load; nothing stored either way
            if a[0] == 200 and b[0] == 400 and REFUSED_ON_PURPOSE.search(b[1] or ""):
                diverged[cid] = None
                continue
            diffs.append(f"step {i}: status Rasa {a[0]}, parley {b[0]} {b[1] if b[0] != 200 else ''}")
        elif a[0] == 200 and a[1] != b[1]:
            diffs.append(f"step {i}: body\n  Rasa   {a[1]}\n  parley {b[1]}")
    if len(r_resp) != len(p_resp):
        diffs.append(f"{len(r_resp)} Rasa responses, {len(p_resp)} parley responses")

    def keep(items, published):
        if not diverged:
            return items
        seen, out = {}, []
        for it in items:
            cid = it[0]
            n = seen[cid] = seen.get(cid, 0) + 1
            if cid not in diverged or (published and diverged[cid] is not None and n <= diverged[cid]):
                out.append(it)
        return out

    for what, a, b, pub in (("published", r_pub, p_pub, True), ("stored row", r_rows, p_rows, False)):
        a, b = keep(a, pub), keep(b, pub)
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else "(none)"
            y = b[i] if i < len(b) else "(none)"
            if x != y:
                diffs.append(f"{what} {i + 1}:\n  Rasa   {x}\n  parley {y}")
    note = f"; compared up to a documented difference: {', '.join(sorted(diverged))}" if diverged else ""
    return diffs, len(r_resp), len(r_pub), len(r_rows), note


def main(argv):
    if len(argv) >= 3 and argv[0] == "rasa":
        # Pairs of SCENARIO OUTDIR: Rasa is imported once for all of them.
        failed = 0
        argv = [argv[0]] + [os.path.abspath(a) for a in argv[1:]]  # run_rasa changes directory
        for i in range(1, len(argv) - 1, 2):
            try:
                run_rasa(load_scenario(argv[i]), argv[i + 1])
            except BaseException:  # one broken scenario does not stop the others
                import traceback
                failed += 1
                os.makedirs(argv[i + 1], exist_ok=True)
                with open(os.path.join(argv[i + 1], "error.txt"), "w", encoding="utf-8") as f:
                    f.write(traceback.format_exc())
                if os.path.exists(os.path.join(argv[i + 1], "responses.jsonl")):
                    os.remove(os.path.join(argv[i + 1], "responses.jsonl"))
        return 1 if failed else 0
    elif len(argv) >= 4 and argv[0] == "http":
        run_http(load_scenario(argv[1]), argv[2].rstrip("/"), argv[3])
    elif len(argv) >= 3 and argv[0] == "config":
        sc = load_scenario(argv[1])
        os.makedirs(argv[2], exist_ok=True)
        with open(os.path.join(argv[2], "domain.yml"), "w", encoding="utf-8") as f:
            f.write(sc["domain"])
        print(json.dumps({"name": sc["name"], "model_id": sc.get("model_id") or "", "assistant_id": sc.get("assistant_id") or ""}))
    elif len(argv) >= 5 and argv[0] == "compare":
        diffs, n, pub, rows, note = compare(argv[1], argv[2], float(argv[3]), load_scenario(argv[4])["steps"])
        if diffs:
            print("\n".join(diffs[:20]))
            if len(diffs) > 20:
                print(f"... {len(diffs) - 20} more")
            return 1
        print(f"{n} responses, {pub} published events, {rows} rows identical{note}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
