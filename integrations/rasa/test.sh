#!/usr/bin/env bash
# Lints and tests parley_rasa in a Rasa 3.6.21 venv (issue #16's tests 1, 2
# and 4, plus the broker's own): the --no-deps venv of bench/rasa/setup.sh,
# cached under ${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache, plus
# pytest and ruff, then `pip install ./integrations/rasa` as a user would.
#
#   integrations/rasa/test.sh [pytest args]
#
# Environment: PARLEY_BIN (a parley binary; else built here with go build),
# PARLEY_KAFKA_SEEDS (the Kafka test; skipped without it unless
# PARLEY_REQUIRE_SERVICES=1), PARLEY_RASA_PLUGIN_VENV (the venv's path).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache
venv=${PARLEY_RASA_PLUGIN_VENV:-$cache/rasa-plugin-venv}
log() { printf 'rasa-plugin: %s\n' "$*" >&2; }

py=$(PARLEY_RASA_VENV=$venv "$root/bench/rasa/setup.sh")

# The test tools, once per requirements-test.txt (a rebuilt venv loses the stamp).
stamp=$venv/.parley-rasa-test-stamp
want=$(sha256sum "$here/requirements-test.txt" | cut -d' ' -f1)
exec 8>"$venv.test.lock"
flock 8
if [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
	log "installing pytest and ruff into $venv"
	"$py" -m pip install --quiet --disable-pip-version-check --no-deps -r "$here/requirements-test.txt" >&2
	echo "$want" >"$stamp"
fi
log "pip install ./integrations/rasa"
(cd "$root" && "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall ./integrations/rasa) >&2
rm -rf "$here/build" "$here"/*.egg-info
flock -u 8

log "ruff"
(cd "$here" && "$venv/bin/ruff" check . && "$venv/bin/ruff" format --check .)

if [[ -z ${PARLEY_BIN:-} ]]; then
	bindir=$(mktemp -d "${TMPDIR:-/tmp}/parley-rasa-bin.XXXXXX")
	trap 'rm -rf "$bindir"' EXIT
	PARLEY_BIN=$bindir/parley
	log "go build -o $PARLEY_BIN ./cmd/parley"
	(cd "$root" && go build -o "$PARLEY_BIN" ./cmd/parley)
	export PARLEY_BIN
fi

log "pytest"
cd "$here" && "$py" -m pytest -q -rs -p no:cacheprovider "$@"
