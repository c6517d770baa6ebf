#!/usr/bin/env bash
# client-compat.sh: run third-party consumer clients, unmodified, against
# `parley serve` (the built-in default: SQLite, consumer API open to
# loopback) and print what each did:
#
#   pymapr-kafkarest 0.1.1 (PyPI)  Confluent v2 paths: create, subscribe,
#                                  read, seek (positions/, trailing slash),
#                                  seek to beginning, delete
#   kafka-rest 0.0.5 (npm)         Confluent v1: create, read a topic
#                                  (which subscribes), commit, delete
#   scripts/compat/confluent_v2.py written from Confluent's v2 docs: topic
#                                  metadata, assign, binary records, commit
#                                  and committed offsets, seek to end,
#                                  topic_pattern, unsubscribe, 406, errors
#
# The clients are installed, pinned (scripts/compat/requirements.txt and
# package.json), into ${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache,
# outside the clone, once. Exit status: 0 when every client worked, 1 when
# one failed, 2 when the tooling could not be set up. Needs: Go, python3,
# node and npm.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
say() { printf '%s\n' "$*" >&2; }
compat=$root/scripts/compat
cache=${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache/client-compat
mkdir -p "$cache" || exit 2

# Python clients, in a venv keyed by the requirements' hash.
req_hash=$(sha256sum "$compat/requirements.txt" | cut -c1-12)
venv=$cache/venv-$req_hash
if [[ ! -x $venv/bin/python ]]; then
	say "client-compat: installing the Python clients into $venv"
	python3 -m venv "$venv.tmp" && "$venv.tmp/bin/pip" install -q --disable-pip-version-check -r "$compat/requirements.txt" &&
		mv "$venv.tmp" "$venv" || { rm -rf "$venv.tmp"; say "client-compat: pip install failed"; exit 2; }
fi
# The npm client, likewise.
pkg_hash=$(sha256sum "$compat/package.json" | cut -c1-12)
nodedir=$cache/node-$pkg_hash
if [[ ! -d $nodedir/node_modules/kafka-rest ]]; then
	say "client-compat: installing the npm client into $nodedir"
	mkdir -p "$nodedir.tmp" && cp "$compat/package.json" "$nodedir.tmp/" &&
		(cd "$nodedir.tmp" && npm install --silent --no-audit --no-fund >/dev/null) &&
		mv "$nodedir.tmp" "$nodedir" || { rm -rf "$nodedir.tmp"; say "client-compat: npm install failed"; exit 2; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/client-compat.XXXXXX")
pid=
cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/parley" ./cmd/parley || { say "client-compat: go build failed"; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
(cd "$work" && exec ./parley serve --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1) &
pid=$!
for _ in $(seq 100); do curl -fsS "$url/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$url/ready" >/dev/null || { say "client-compat: parley serve did not start"; cat "$work/serve.log" >&2; exit 2; }

events=$root/internal/fixtures/data/events.ndjson
n=$(grep -c . "$events")
curl -fsS -H 'Content-Type: application/x-ndjson' --data-binary "@$events" "$url/events" >/dev/null || { say "client-compat: POST /events failed"; exit 2; }
topic=rasa_core_events
for _ in $(seq 100); do
	[[ $(curl -fsS "$url/partitions/0/offsets" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["end_offset"]-o["beginning_offset"])') == "$n" ]] && break
	sleep 0.1
done

status=0
row() { printf '%-20s %-8s %-5s %s\n' "$@"; }
row client version works detail
drive() { # name version command...
	local name=$1 version=$2 out
	shift 2
	if out=$(KAFKAREST_LOG_LEVEL=WARNING "$@" 2>&1); then
		row "$name" "$version" yes "$(tail -n1 <<<"$out")"
	else
		row "$name" "$version" NO "$(tr '\n' ' ' <<<"$out" | tail -c 400)"
		status=1
	fi
}
drive pymapr-kafkarest 0.1.1 "$venv/bin/python" "$compat/pymapr_drive.py" "$url/" "$topic" "$n"
drive kafka-rest 0.0.5 env NODE_PATH="$nodedir/node_modules" node "$compat/kafkarest_drive.js" "$url" "$topic" "$n"
drive confluent-v2-docs - "$venv/bin/python" "$compat/confluent_v2.py" "$url" "$topic" "$n"
if [[ $status != 0 ]]; then
	say "client-compat: parley's log:"
	tail -n 30 "$work/serve.log" >&2
fi
exit $status
