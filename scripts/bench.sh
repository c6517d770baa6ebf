#!/usr/bin/env bash
# scripts/bench.sh: every benchmark of docs/benchmarks.md in one run on this
# machine, against the real services of scripts/services.sh and Rasa 3.6.21's
# own brokers (bench/rasa), printing a markdown summary of the ratios.
#
#   scripts/bench.sh           # the full run (about 20 minutes: includes a 10-minute soak)
#   scripts/bench.sh --short   # fewer events, shorter ingest, 1-minute soak (make bench)
#
# Results: $PARLEY_BENCH_OUT (default a temporary directory, printed at the
# end) holds each run's JSON and summary.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
short=0
[[ ${1:-} == --short ]] && short=1

if ((short)); then
	events=20000 ingest_for=10s soak_for=1m soak_sample=5s soak_warmup=2 consume_events=50000
	rasa_kafka=5000 rasa_pika=2000 rasa_sqlite=300 rasa_pg=1000 rasa_file=5000
else
	events=100000 ingest_for=30s soak_for=10m soak_sample=10s soak_warmup=6 consume_events=200000
	rasa_kafka=20000 rasa_pika=5000 rasa_sqlite=1000 rasa_pg=3000 rasa_file=20000
fi

log() { printf '[bench +%ss] %s\n' "$SECONDS" "$*" >&2; }

out=${PARLEY_BENCH_OUT:-$(mktemp -d /tmp/parley-bench.XXXXXX)}
mkdir -p "$out"
work=$(mktemp -d /tmp/parley-bench-work.XXXXXX)
run=b$(date +%s)
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c" >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT

log "services"
eval "$(scripts/services.sh up)"
log "building parley"
go build -o "$work/parley" ./cmd/parley
parley=$work/parley
log "reference Rasa"
py=$(bench/rasa/setup.sh)
capture=bench/rasa/capture.py

# parley_pub NAME YAML [ENV=...] [EVENTS ROUNDS]: parley bench publish
# (with its raw baseline on the same destination).
parley_pub() {
	local name=$1 dir=$work/$1-parley n=${4:-$events} rounds=${5:-5}
	mkdir -p "$dir"
	printf '%s' "$2" >"$dir/endpoints.yml"
	log "parley publish: $name ($n events, $rounds rounds)"
	(cd "$dir" && env ${3:+"$3"} "$parley" bench publish --into-configured --json --events "$n" --rounds "$rounds" >"$out/publish-$name.json")
}

# rasa_pub NAME YAML COUNT [ENV=...]: Rasa's own broker on the same service.
rasa_pub() {
	local name=$1 dir=$work/$1-rasa count=$3
	mkdir -p "$dir"
	printf '%s' "$2" >"$dir/endpoints.yml"
	log "rasa publish: $name ($count events)"
	# In its own directory: Rasa's SQLite and file brokers write there.
	(cd "$dir" && env ${4:+"$4"} "$py" "$root/bench/rasa/rasa_publish.py" --endpoints "$dir/endpoints.yml" --count "$count" \
		--bench --json-stats -q >"$out/rasa-$name.json")
}

# --- publish, per broker ----------------------------------------------------
sqlite_yml='event_broker:
  type: sql
  dialect: sqlite
  db: events.db
'
parley_pub sql-sqlite "$sqlite_yml"
rasa_pub sql-sqlite "$sqlite_yml" "$rasa_sqlite"

pg_yml="event_broker:
  type: sql
  dialect: postgresql
  url: $PARLEY_POSTGRES_HOST
  port: $PARLEY_POSTGRES_PORT
  username: $PARLEY_POSTGRES_USER
  password: $PARLEY_POSTGRES_PASSWORD
  db: $PARLEY_POSTGRES_DB
"
for side in parley rasa; do
	"$py" "$capture" pg-schema "$PARLEY_POSTGRES_DSN" create "${run}_$side" >/dev/null
	cleanup+=("'$py' '$capture' pg-schema '$PARLEY_POSTGRES_DSN' drop '${run}_$side'")
done
parley_pub sql-postgres "$pg_yml" "PGOPTIONS=-c search_path=${run}_parley"
rasa_pub sql-postgres "$pg_yml" "$rasa_pg" "PGOPTIONS=-c search_path=${run}_rasa"

file_yml='event_broker:
  type: file
  path: events.log
'
parley_pub file "$file_yml"
rasa_pub file "$file_yml" "$rasa_file"

for side in parley rasa; do
	"$py" "$capture" kafka-topic "$PARLEY_KAFKA_SEEDS" create "$run-$side" --partitions 3 >/dev/null
	cleanup+=("'$py' '$capture' kafka-topic '$PARLEY_KAFKA_SEEDS' delete '$run-$side'")
done
kafka_yml() { printf 'event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  partition_by_sender: true\n  security_protocol: PLAINTEXT\n' "$PARLEY_KAFKA_SEEDS" "$1"; }
# A round of 100,000 events lasts 0.2 s against Kafka, too short for a
# stable ratio: the broker's own throughput swings from round to round.
parley_pub kafka "$(kafka_yml "$run-parley")" "" $((events * 3)) 7
rasa_pub kafka "$(kafka_yml "$run-rasa")" "$rasa_kafka"

pika_yml() {
	printf 'event_broker:\n  type: pika\n  url: %s\n  port: %s\n  username: %s\n  password: %s\n  exchange_name: %s\n  queues:\n    - %s\n' \
		127.0.0.1 5672 parley parley "$1-x" "$1-q"
}
for side in parley rasa; do
	cleanup+=("'$py' '$capture' amqp-delete '$PARLEY_AMQP_URL' --queue '$run-$side-q' --exchange '$run-$side-x'")
done
parley_pub pika "$(pika_yml "$run-parley")"
rasa_pub pika "$(pika_yml "$run-rasa")" "$rasa_pika"

# --- ingest, consume, soak ----------------------------------------------------
mkdir -p "$work/ingest"
log "ingest at 5000 events/s for $ingest_for (built-in defaults: SQLite)"
(cd "$work/ingest" && "$parley" bench ingest --json --rate 5000 --duration "$ingest_for" >"$out/ingest.json")

mkdir -p "$work/consume"
"$py" "$capture" kafka-topic "$PARLEY_KAFKA_SEEDS" create "$run-consume" --partitions 3 >/dev/null
cleanup+=("'$py' '$capture' kafka-topic '$PARLEY_KAFKA_SEEDS' delete '$run-consume'")
printf 'event_broker:\n  type: kafka\n  url: %s\n  topic: %s\n  security_protocol: PLAINTEXT\nconsumer_api:\n  rate_limit: 0\n  max_records: 5000\n' \
	"$PARLEY_KAFKA_SEEDS" "$run-consume" >"$work/consume/endpoints.yml"
log "consume $consume_events events: direct franz-go, records (JSON, NDJSON values), SSE (records, values)"
(cd "$work/consume" && "$parley" bench consume --into-configured --json --events "$consume_events" --rounds 5 >"$out/consume.json")

mkdir -p "$work/soak"
log "soak: 2000 events/s for $soak_for"
(cd "$work/soak" && "$parley" bench soak --json --rate 2000 --duration "$soak_for" --sample "$soak_sample" --warmup "$soak_warmup" >"$out/soak.json")

log "go benchmarks (event, spool, SQLite)"
go test -run '^$' -bench 'BenchmarkParse$|BenchmarkRasaJSON|BenchmarkParseValidateEncode' -benchmem ./event >"$out/go-event.txt"
go test -run '^$' -bench 'BenchmarkAppend' -benchmem ./spool >"$out/go-spool.txt" || true
go test -run '^$' -bench 'BenchmarkSQLite' -benchtime 5x ./bench >"$out/go-sqlite.txt"

"$py" - "$out" "$short" <<'EOF' | tee "$out/summary.md"
import json, os, sys, re
out, short = sys.argv[1], sys.argv[2] == "1"
def load(name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)
rows = []
print("| broker | parley events/s | raw client events/s | parley / raw | Rasa events/s | parley / Rasa |")
print("|---|---:|---:|---:|---:|---:|")
for name in ["kafka", "pika", "sql-sqlite", "sql-postgres", "file"]:
    res = load(f"publish-{name}.json")
    raw = [r for r in res if r.get("baseline") is None and not r["name"].startswith("parley")][0]
    par = [r for r in res if r["name"].startswith("parley")][0]
    eps = lambda r: r["events"] / (r["duration_ns"] / 1e9)
    rasa = load(f"rasa-{name}.json")
    print(f"| {name} | {eps(par):,.0f} | {eps(raw):,.0f} ({raw['name'].split(' (')[0]}) | {par['ratio']:.2f}x | {rasa['events_per_sec']:,.0f} | {eps(par)/rasa['events_per_sec']:.0f}x |")
ing = load("ingest.json")[0]
lat = ing["latency"]
print()
print(f"Ingest, {ing['name']}: {ing['events']/(ing['duration_ns']/1e9):,.0f} events/s achieved, "
      f"p50 {lat['p50_ns']/1e6:.2f} ms, p99 {lat['p99_ns']/1e6:.2f} ms, p999 {lat['p999_ns']/1e6:.2f} ms" + (f" ({ing['note']})" if ing.get("note") else ""))
print()
print("| consume | events/s | vs direct |")
print("|---|---:|---:|")
for r in load("consume.json"):
    e = r["events"] / (r["duration_ns"] / 1e9)
    print(f"| {r['name']} | {e:,.0f} | {('%.2fx' % r['ratio']) if r.get('ratio') else '-'} |")
soak = load("soak.json")
m = soak["memory"]
s = m["rss_bytes"]
print()
print(f"Soak, {soak['result']['name']}: RSS {s[m['warmup_samples']]/2**20:.1f} MiB after warm-up, {s[-1]/2**20:.1f} MiB at the end "
      f"(growth {100*m['growth']:+.1f}%, peak {100*m['peak_over_start']:+.1f}%, {len(s)} samples)")
print()
for f in ["go-event.txt", "go-spool.txt", "go-sqlite.txt"]:
    lines = [l for l in open(os.path.join(out, f)) if l.startswith("Benchmark")]
    if lines:
        print("```")
        print("".join(lines).rstrip())
        print("```")
EOF
log "results in $out"
