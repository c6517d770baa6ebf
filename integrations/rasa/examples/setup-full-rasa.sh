#!/usr/bin/env bash
# Creates (once, then reuses) a venv with the full rasa==3.6.21 from PyPI
# (TensorFlow included) under Python 3.10, plus parley_rasa, and prints its
# python on stdout. Used by e2e.sh (make rasa-e2e).
#
# Environment:
#   PARLEY_RASA_E2E_VENV    the venv (default ${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache/rasa-3.6.21-full)
#   PARLEY_RASA_E2E_PYTHON  a Python 3.8-3.10 (default python3.10, else pyenv's 3.10)
set -euo pipefail
RASA_VERSION=3.6.21
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
plugin=$(cd "$here/.." && pwd)
venv=${PARLEY_RASA_E2E_VENV:-${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache/rasa-$RASA_VERSION-full}
log() { printf 'rasa-e2e: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

python=${PARLEY_RASA_E2E_PYTHON:-}
if [[ -z $python ]]; then
	if python3.10 -V >/dev/null 2>&1; then
		python=python3.10
	elif command -v pyenv >/dev/null 2>&1; then
		python=$(ls -d "$(pyenv root)"/versions/3.10*/bin/python3.10 2>/dev/null | tail -1)
	fi
fi
[[ -n $python ]] || die "no Python 3.10 (Rasa $RASA_VERSION needs <3.11); set PARLEY_RASA_E2E_PYTHON"

stamp_want="rasa=$RASA_VERSION python=$("$python" -V 2>&1)"
stamp=$venv/.parley-e2e-stamp
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! [[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$stamp_want" ]]; then
	start=$SECONDS
	log "building $venv: rasa==$RASA_VERSION with $("$python" -V 2>&1) (a few minutes, ~2 GB)"
	rm -rf "$venv"
	"$python" -m venv "$venv" >&2
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rasa==$RASA_VERSION" >&2 ||
		die "pip install rasa==$RASA_VERSION failed (see above)"
	echo "$stamp_want" >"$stamp"
	log "rasa installed in $((SECONDS - start))s"
fi
# The plugin, fresh each run, the way a user installs it (no dependencies:
# Rasa brings what it needs).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall "$plugin" >&2
rm -rf "$plugin/build" "$plugin"/*.egg-info
echo "$venv/bin/python"
