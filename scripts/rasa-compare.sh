#!/usr/bin/env bash
# rasa-compare.sh: publish the same events through Rasa 3.6.21's own event
# brokers and through `parley publish`, with equivalent endpoints.yml files,
# and compare what arrives at each broker byte for byte.
#
#   scripts/rasa-compare.sh              # every scenario
#   scripts/rasa-compare.sh file kafka   # scenarios whose name starts so
#
# Scenarios (each side gets its own file, table, topic or queue):
#   file            Rasa's FileEventBroker: the lines of the log file
#   sql-sqlite      SQLEventBroker on SQLite: the events table's columns
#                   (name, type, NOT NULL, primary key) and every row
#   sql-postgres    the same on PostgreSQL (PARLEY_POSTGRES_*), each side in
#                   its own schema (PGOPTIONS search_path)
#   kafka           KafkaEventBroker, 1 partition, no key: values, keys,
#                   headers in order (PARLEY_KAFKA_SEEDS)
#   kafka-keyed     partition_by_sender on 6 partitions with 840 events (30
#                   conversations) and RASA_ENVIRONMENT set: also which
#                   partition each conversation lands in
#   pika            PikaEventBroker: bodies, every AMQP property, and whether
#                   parley's exchange and queue are declared as Rasa's are
#                   (PARLEY_AMQP_URL)
#   pika-env        the same with RASA_ENVIRONMENT set (Rasa's app_id)
#   conv:NAME       a conversation-API scenario (bench/rasa/conversations/
#                   NAME.json, plus every *.json of PARLEY_COMPARE_CONVERSATIONS,
#                   a directory or file): its POST/PUT/GET requests go to
#                   `parley serve` and through Rasa's own conversation code
#                   (bench/rasa/conversations.py); the responses, the events
#                   published to a file broker and the tracker store's rows
#                   on SQLite must be identical. parley runs with
#                   rasa_append (Rasa's handling of repeated POSTs).
#
# Service scenarios are skipped when their env var is unset (see
# `scripts/services.sh env`), unless PARLEY_REQUIRE_SERVICES=1. A scenario
# whose broker type parley does not have yet (`parley config check`
# reports an unknown type) is skipped too, and says so.
#
# parley's deliberate addition, the Kafka header parley-event-id (the event
# ID, for de-duplication), is checked to be present and then left out of
# the comparison; PARLEY_COMPARE_STRICT=1 counts it as a difference. The
# AMQP message_id is random per message under Rasa (aiormq fills it in), so
# only its presence is compared.
#
# Exit status: 0 when every scenario that ran matched, 1 on any difference
# or error, 2 when the tooling could not be set up. Needs: Go, python3
# (3.10 or 3.11; bench/rasa/setup.sh builds the Rasa venv on first use).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
input=${PARLEY_COMPARE_INPUT:-$root/internal/fixtures/data/events.ndjson}
expected=$root/internal/fixtures/data/events.rasa.ndjson
strict=${PARLEY_COMPARE_STRICT:-0}
require=${PARLEY_REQUIRE_SERVICES:-0}

say() { printf '%s\n' "$*" >&2; }

py=$(bench/rasa/setup.sh) || { say "rasa-compare: could not set up the Rasa venv"; exit 2; }
publish_py=$root/bench/rasa/rasa_publish.py
capture_py=$root/bench/rasa/capture.py
conv_py=$root/bench/rasa/conversations.py
export SQLALCHEMY_SILENCE_UBER_WARNING=1

work=$(mktemp -d "${TMPDIR:-/tmp}/rasa-compare.XXXXXX")
run=rc$(date +%s)$$
say "rasa-compare: building parley; work dir $work"
go build -o "$work/parley" ./cmd/parley || { say "rasa-compare: go build failed"; exit 2; }
parley=$work/parley

# Everything created on shared services, removed on exit.
cleanup_cmds=()
cleanup() {
	local c
	for c in "${cleanup_cmds[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
	if [[ ${PARLEY_COMPARE_KEEP:-0} == 1 ]]; then say "rasa-compare: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

names=() results=() details=()
record() { # name result detail
	names+=("$1") results+=("$2") details+=("$3")
	printf '%-13s %-5s %s\n' "$1" "$2" "$3"
}

wanted() { # name: run it when no filter, or a filter is a prefix of it
	local f
	[[ $# -gt 0 && ${#filters[@]} -eq 0 ]] && return 0
	for f in "${filters[@]}"; do [[ $1 == "$f"* ]] && return 0; done
	return 1
}

needs() { # name var: skip unless $var is set
	if [[ -z ${!2:-} ]]; then
		if [[ $require == 1 ]]; then
			record "$1" FAIL "$2 is unset and PARLEY_REQUIRE_SERVICES=1"
		else
			record "$1" SKIP "$2 is unset (eval \"\$(scripts/services.sh env)\")"
		fi
		return 1
	fi
}

# parley_has NAME DIR: parley knows the broker type of DIR/parley.yml.
parley_has() {
	local out
	if out=$("$parley" config check --endpoints "$2/parley.yml" 2>&1); then return 0; fi
	if grep -q 'unknown event broker type' <<<"$out"; then
		record "$1" SKIP "parley has no such broker yet: $(grep -o 'unknown event broker type[^(]*' <<<"$out" | head -1)"
	else
		record "$1" FAIL "parley config check rejects the equivalent endpoints.yml: $(tr '\n' ' ' <<<"$out")"
	fi
	return 1
}

# publish NAME DIR [COUNT]: the same events through Rasa, then parley, each
# with its own endpoints.yml; env vars in DIR/env apply to both.
publish() {
	local name=$1 dir=$2 count=${3:-} parley_input=$input args=()
	local -a envs=()
	[[ -f $dir/env ]] && mapfile -t envs <"$dir/env"
	if [[ -n $count ]]; then
		args+=(--count "$count" --write-input "$dir/input.ndjson")
		parley_input=$dir/input.ndjson
	fi
	local -a renv=(${envs[@]+"${envs[@]}"}) penv=(${envs[@]+"${envs[@]}"})
	[[ -n ${RASA_PGOPTIONS:-} ]] && renv+=("PGOPTIONS=$RASA_PGOPTIONS")
	[[ -n ${PARLEY_PGOPTIONS:-} ]] && penv+=("PGOPTIONS=$PARLEY_PGOPTIONS")
	if ! env ${renv[@]+"${renv[@]}"} timeout 300 \
		"$py" "$publish_py" --endpoints "$dir/rasa.yml" --input "$input" --json-stats "${args[@]}" \
		>"$dir/rasa.stats" 2>"$dir/rasa.err"; then
		record "$name" FAIL "Rasa's broker failed: $(tail -3 "$dir/rasa.err" | tr '\n' ' ')"
		return 1
	fi
	if ! env ${penv[@]+"${penv[@]}"} timeout 300 \
		"$parley" publish --endpoints "$dir/parley.yml" "$parley_input" >"$dir/parley.out" 2>"$dir/parley.err"; then
		record "$name" FAIL "parley publish failed: $(tail -3 "$dir/parley.err" | tr '\n' ' ')"
		return 1
	fi
}

# compare NAME DIR [--extension F|--volatile F]...: diff DIR/rasa.cap and
# DIR/parley.cap.
compare() {
	local name=$1 dir=$2 n out ext=()
	shift 2
	while [[ $# -ge 2 ]]; do
		[[ $1 == --extension && $strict == 1 ]] || ext+=("$1" "$2")
		shift 2
	done
	n=$(grep -vc '^{"\(columns\|primary_key\|topology\)"' "$dir/rasa.cap")
	if out=$("$py" "$capture_py" diff "$dir/rasa.cap" "$dir/parley.cap" ${ext[@]+"${ext[@]}"} 2>&1); then
		record "$name" PASS "$n messages identical${out:+; ${out//$'\n'/; }}"
	else
		record "$name" FAIL "differences:"
		sed 's/^/              /' <<<"$out"
		details[${#details[@]} - 1]="differences: $(head -1 <<<"$out")"
	fi
}

newdir() { mkdir -p "$work/$1" && echo "$work/$1"; }

# --- scenarios -------------------------------------------------------------

scenario_file() {
	local d side
	d=$(newdir file)
	for side in rasa parley; do
		printf 'event_broker:\n  type: file\n  path: %s\n' "$d/$side.log" >"$d/$side.yml"
	done
	parley_has file "$d" || return
	publish file "$d" || return
	# A log line is the message: capture it as one record per line.
	for side in rasa parley; do
		"$py" -c 'import json,sys
for l in open(sys.argv[1], "rb").read().split(b"\n")[:-1]: print(json.dumps({"line": l.decode("latin-1")}))' "$d/$side.log" >"$d/$side.cap"
	done
	if [[ -z ${PARLEY_COMPARE_INPUT:-} ]] && ! cmp -s "$d/rasa.log" "$expected"; then
		record file FAIL "the Rasa reference itself does not write events.rasa.ndjson: check the venv"
		return
	fi
	compare file "$d"
}

scenario_sql_sqlite() {
	local d side
	d=$(newdir sql-sqlite)
	for side in rasa parley; do
		printf 'event_broker:\n  type: SQL\n  dialect: sqlite\n  db: %s\n' "$d/$side.db" >"$d/$side.yml"
	done
	parley_has sql-sqlite "$d" || return
	publish sql-sqlite "$d" || return
	for side in rasa parley; do "$py" "$capture_py" sqlite "$d/$side.db" >"$d/$side.cap" || {
		record sql-sqlite FAIL "cannot read $side's database"
		return
	}; done
	compare sql-sqlite "$d"
}

scenario_sql_postgres() {
	local d side
	needs sql-postgres PARLEY_POSTGRES_DSN || return
	d=$(newdir sql-postgres)
	for side in rasa parley; do
		cat >"$d/$side.yml" <<-EOF
			event_broker:
			  type: SQL
			  dialect: postgresql
			  url: ${PARLEY_POSTGRES_HOST:-127.0.0.1}
			  port: ${PARLEY_POSTGRES_PORT:-5432}
			  username: ${PARLEY_POSTGRES_USER:-parley}
			  password: ${PARLEY_POSTGRES_PASSWORD:-parley}
			  db: ${PARLEY_POSTGRES_DB:-parley}
		EOF
	done
	parley_has sql-postgres "$d" || return
	for side in rasa parley; do
		"$py" "$capture_py" pg-schema "$PARLEY_POSTGRES_DSN" create "${run}_$side" 2>"$d/setup.err" || {
			record sql-postgres FAIL "cannot create schema ${run}_$side: $(tail -1 "$d/setup.err")"
			return
		}
		cleanup_cmds+=("'$py' '$capture_py' pg-schema '$PARLEY_POSTGRES_DSN' drop '${run}_$side'")
	done
	RASA_PGOPTIONS="-c search_path=${run}_rasa" PARLEY_PGOPTIONS="-c search_path=${run}_parley" \
		publish sql-postgres "$d" || return
	for side in rasa parley; do "$py" "$capture_py" postgres "$PARLEY_POSTGRES_DSN" "${run}_$side" >"$d/$side.cap" || {
		record sql-postgres FAIL "cannot read $side's table"
		return
	}; done
	compare sql-postgres "$d"
}

# kafka_scenario NAME PARTITIONS COUNT EXTRA_YAML ENV
kafka_scenario() {
	local name=$1 parts=$2 count=$3 extra=$4 envline=$5 d side topic n
	needs "$name" PARLEY_KAFKA_SEEDS || return
	d=$(newdir "$name")
	[[ -n $envline ]] && printf "%s\n" "$envline" >"$d/env"
	for side in rasa parley; do
		topic=$run-$name-$side
		printf 'event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  security_protocol: PLAINTEXT\n%s' \
			"$PARLEY_KAFKA_SEEDS" "$topic" "$extra" >"$d/$side.yml"
	done
	parley_has "$name" "$d" || return
	for side in rasa parley; do
		topic=$run-$name-$side
		"$py" "$capture_py" kafka-topic "$PARLEY_KAFKA_SEEDS" create "$topic" --partitions "$parts" 2>"$d/setup.err" || {
			record "$name" FAIL "cannot create topic $topic: $(tail -1 "$d/setup.err")"
			return
		}
		cleanup_cmds+=("'$py' '$capture_py' kafka-topic '$PARLEY_KAFKA_SEEDS' delete '$topic'")
	done
	publish "$name" "$d" "$count" || return
	n=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$d/rasa.stats")
	for side in rasa parley; do
		"$py" "$capture_py" kafka "$PARLEY_KAFKA_SEEDS" "$run-$name-$side" --expect "$n" >"$d/$side.cap" 2>"$d/$side.caperr" || {
			record "$name" FAIL "cannot read $side's topic: $(tail -1 "$d/$side.caperr")"
			return
		}
	done
	compare "$name" "$d" --extension parley-event-id
}

# pika_scenario NAME ENV
pika_scenario() {
	local name=$1 envline=$2 d side n host port user pass
	needs "$name" PARLEY_AMQP_URL || return
	d=$(newdir "$name")
	[[ -n $envline ]] && printf "%s\n" "$envline" >"$d/env"
	# amqp://user:pass@host:port/ -> Rasa's separate keys
	read -r user pass host port < <("$py" -c 'import sys, urllib.parse as u
p = u.urlparse(sys.argv[1]); print(p.username or "guest", p.password or "guest", p.hostname or "localhost", p.port or 5672)' "$PARLEY_AMQP_URL")
	for side in rasa parley; do
		cat >"$d/$side.yml" <<-EOF
			event_broker:
			  type: pika
			  url: $host
			  port: $port
			  username: $user
			  password: $pass
			  queues:
			    - $run-$name-$side
			  exchange_name: $run-$name-$side-exchange
		EOF
		cleanup_cmds+=("'$py' '$capture_py' amqp-delete '$PARLEY_AMQP_URL' --queue '$run-$name-$side' --exchange '$run-$name-$side-exchange'")
	done
	parley_has "$name" "$d" || return
	publish "$name" "$d" || return
	n=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$d/rasa.stats")
	for side in rasa parley; do
		"$py" "$capture_py" amqp "$PARLEY_AMQP_URL" "$run-$name-$side" --expect "$n" \
			--check-exchange "$run-$name-$side-exchange" >"$d/$side.cap" 2>"$d/$side.caperr" || {
			record "$name" FAIL "cannot read $side's queue: $(tail -1 "$d/$side.caperr")"
			return
		}
	done
	compare "$name" "$d" --volatile message_id --extension parley-event-id --absent-is priority=0
}

# conv_scenario FILE DIR: one conversation-API scenario on both sides.
conv_scenario() {
	local f=$1 d=$2 name cfg model assistant port pid since out i
	name=conv:$(basename "$f" .json)
	since=$conv_since
	if [[ ! -s $d/rasa/responses.jsonl ]]; then
		record "$name" FAIL "Rasa's side failed: $(cat "$d/rasa/error.txt" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -3 | tr '\n' ' ')"
		return
	fi
	cfg=$("$py" "$conv_py" config "$f" "$d/parley") || { record "$name" FAIL "bad scenario"; return; }
	model=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["model_id"])' "$cfg")
	assistant=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["assistant_id"])' "$cfg")
	cat >"$d/parley/endpoints.yml" <<-EOF
		event_broker:
		  type: file
		  path: $d/parley/published.log
		tracker_store:
		  type: sql
		  dialect: sqlite
		  db: $d/parley/rasa.db
		spool:
		  dir: $d/parley/spool
		conversations:
		  domain: domain.yml
		  model_id: "$model"
		  assistant_id: "$assistant"
		  rasa_append: true
	EOF
	port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$parley" serve --endpoints "$d/parley/endpoints.yml" --addr "127.0.0.1:$port" >"$d/parley.log" 2>&1 &
	pid=$!
	for i in $(seq 1 100); do
		"$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
			"http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	out=ok
	"$py" "$conv_py" http "$f" "http://127.0.0.1:$port" "$d/parley" 2>"$d/http.err" || out="requests failed: $(tail -1 "$d/http.err")"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if [[ $out != ok ]]; then
		record "$name" FAIL "$out; parley log: $(tail -2 "$d/parley.log" | tr '\n' ' ')"
		return
	fi
	if out=$("$py" "$conv_py" compare "$d/rasa" "$d/parley" "$since" "$f" 2>&1); then
		record "$name" PASS "$out"
	else
		record "$name" FAIL "differences:"
		sed 's/^/              /' <<<"$out"
	fi
}

scenario_conversations() {
	local f files=()
	shopt -s nullglob
	files=("$root"/bench/rasa/conversations/*.json)
	if [[ -n ${PARLEY_COMPARE_CONVERSATIONS:-} ]]; then
		if [[ -d $PARLEY_COMPARE_CONVERSATIONS ]]; then
			files+=("$PARLEY_COMPARE_CONVERSATIONS"/*.json)
		else
			files+=("$PARLEY_COMPARE_CONVERSATIONS")
		fi
	fi
	shopt -u nullglob
	local run=() dirs=() args=() i
	for f in "${files[@]}"; do
		wanted "conv:$(basename "$f" .json)" || continue
		run+=("$f")
		dirs+=("$(newdir "conv-${#run[@]}-$(basename "$f" .json)")")
		args+=("$f" "${dirs[-1]}/rasa")
	done
	[[ ${#run[@]} -gt 0 ]] || return
	# Rasa's side of every scenario in one process (importing Rasa is slow).
	conv_since=$(($(date +%s) - 5))
	"$py" -W ignore "$conv_py" rasa "${args[@]}" 2>"$work/conv-rasa.err"
	for i in "${!run[@]}"; do conv_scenario "${run[$i]}" "${dirs[$i]}"; done
}

filters=("$@")
printf '%-13s %-5s %s\n' SCENARIO RESULT DETAIL
wanted file && scenario_file
wanted sql-sqlite && scenario_sql_sqlite
wanted sql-postgres && scenario_sql_postgres
wanted kafka && kafka_scenario kafka 1 "" "" ""
wanted kafka-keyed && kafka_scenario kafka-keyed 6 840 "  partition_by_sender: true
" "RASA_ENVIRONMENT=staging"
wanted pika && pika_scenario pika ""
wanted pika-env && pika_scenario pika-env "RASA_ENVIRONMENT=staging"
scenario_conversations

pass=0 fail=0 skip=0
for r in "${results[@]}"; do
	case $r in PASS) ((pass++)) ;; FAIL) ((fail++)) ;; SKIP) ((skip++)) ;; esac
done
echo
echo "rasa-compare: $pass passed, $fail failed, $skip skipped (Rasa 3.6.21 vs parley $(git -C "$root" rev-parse --short HEAD 2>/dev/null))"
[[ $fail -eq 0 && ${#results[@]} -gt 0 ]]
