#!/usr/bin/env bash
# make rasa-e2e: a real, trained Rasa 3.6.21 bot (examples/bot) end to end.
# Needs Kafka (eval "$(scripts/services.sh up)") and Python 3.10; builds and
# caches the full-Rasa venv (setup-full-rasa.sh) on first use.
#
#   1. rasa train (KeywordIntentClassifier + RegexEntityExtractor + RulePolicy)
#   2. rasa run --enable-api with parley_rasa.ParleyEventBroker -> parley serve
#      -> Kafka topic A; 20 conversations through POST /webhooks/rest/webhook,
#      parley stopped during 10-14 and started again for 15-19
#   3. the same with Rasa's own `type: kafka` broker -> topic B
#   4. each conversation's events in A and B compared (e2e.py)
#
# PARLEY_E2E_KEEP=1 keeps the work directory (logs, model, report.json).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
log() { printf 'rasa-e2e: %s\n' "$*" >&2; }
start=$SECONDS

[[ -n ${PARLEY_KAFKA_SEEDS:-} ]] || { log "error: PARLEY_KAFKA_SEEDS is not set (eval \"\$(scripts/services.sh up)\")"; exit 2; }
py=$("$here/setup-full-rasa.sh")
venv=$(dirname "$(dirname "$py")")
log "venv ready (+$((SECONDS - start))s)"

work=$(mktemp -d "${TMPDIR:-/tmp}/rasa-e2e.XXXXXX")
if [[ ${PARLEY_E2E_KEEP:-} == 1 ]]; then
	log "work dir: $work (kept)"
else
	trap 'rm -rf "$work"' EXIT
fi
(cd "$root" && go build -o "$work/parley" ./cmd/parley)

export RASA_TELEMETRY_ENABLED=false
t=$SECONDS
(cd "$work" && "$venv/bin/rasa" train --config "$here/bot/config.yml" --domain "$here/bot/domain.yml" \
	--data "$here/bot/data" --out "$work/models" --fixed-model-name bot >"$work/train.log" 2>&1) ||
	{ tail -40 "$work/train.log" >&2; log "FAIL: rasa train"; exit 1; }
log "rasa train took $((SECONDS - t))s"

"$py" "$here/e2e.py" --parley "$work/parley" --rasa "$venv/bin/rasa" --model "$work/models/bot.tar.gz" \
	--bot "$here/bot" --work "$work" --seeds "$PARLEY_KAFKA_SEEDS" --conversations 20
log "done in $((SECONDS - start))s"
