#!/usr/bin/env bash
# Creates (once, then reuses) a Python venv holding a reference Rasa 3.6.21
# whose event brokers parley is compared and benchmarked against, and prints
# the venv's python on stdout:
#
#   py=$(bench/rasa/setup.sh) && "$py" bench/rasa/rasa_publish.py --help
#
# Rasa is never a dependency of parley itself; only bench/rasa and
# scripts/rasa-compare.sh use this venv.
#
# Environment:
#   PARLEY_RASA_VENV    where the venv lives (default /tmp/parley-rasa-venv)
#   PARLEY_RASA_PYTHON  the interpreter to build it from (default python3)
#   PARLEY_RASA_REBUILD=1  rebuild even if the venv is up to date
#
# Rasa 3.6.21 declares Requires-Python <3.11 and pulls in TensorFlow and
# friends; neither matters for the brokers. So the install is
# `pip install --no-deps --ignore-requires-python rasa==3.6.21` plus the
# pinned minimal set in requirements.txt, and the venv is only marked ready
# after Rasa's broker classes import. A venv is reused while its stamp (the
# interpreter's version and the requirements' hash) matches; otherwise it is
# rebuilt from scratch. All progress goes to stderr.
set -euo pipefail

RASA_VERSION=3.6.21
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${PARLEY_RASA_VENV:-/tmp/parley-rasa-venv}
python=${PARLEY_RASA_PYTHON:-python3}
reqs=$here/requirements.txt

log() { printf 'rasa-setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v "$python" >/dev/null 2>&1 || die "$python not found (set PARLEY_RASA_PYTHON)"
pyver=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') ||
	die "$python does not run"
"$python" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] else 1)' ||
	die "Python $pyver is too old for Rasa $RASA_VERSION (needs 3.8 or newer)"
"$python" -c 'import venv, ensurepip' 2>/dev/null ||
	die "Python $pyver lacks venv/ensurepip (on Debian: apt-get install python3-venv)"

stamp_want="rasa=$RASA_VERSION python=$pyver reqs=$(sha256sum "$reqs" | cut -d' ' -f1)"
stamp=$venv/.parley-rasa-stamp

# Rasa's broker modules, the way a Rasa server has them loaded when it
# publishes (rasa_publish.py imports the same).
verify='
import os, warnings
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
warnings.simplefilter("ignore")
import rasa.version
assert rasa.version.__version__ == "'$RASA_VERSION'", rasa.version.__version__
import rasa.core.tracker_store, rasa.shared.core.events
from rasa.utils.endpoints import read_endpoint_config
from rasa.core.brokers.broker import EventBroker
from rasa.core.brokers.kafka import KafkaEventBroker
from rasa.core.brokers.pika import PikaEventBroker
from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.brokers.file import FileEventBroker
import confluent_kafka, aio_pika, sqlalchemy, psycopg2
'

up_to_date() {
	[[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$stamp_want" ]]
}

if [[ ${PARLEY_RASA_REBUILD:-} != 1 ]] && up_to_date; then
	echo "$venv/bin/python"
	exit 0
fi

# Serialize concurrent callers (e.g. two compare runs): the second waits and
# then finds the venv ready.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ ${PARLEY_RASA_REBUILD:-} != 1 ]] && up_to_date; then
	echo "$venv/bin/python"
	exit 0
fi

start=$SECONDS
log "building $venv with Python $pyver ($python)"
rm -rf "$venv"
"$python" -m venv "$venv" >&2
# --no-compile: Python compiles what is imported on first use instead of
# every file of boto3/scipy/... now, which roughly halves the install.
log "installing rasa==$RASA_VERSION (--no-deps) and $(grep -cE '^[A-Za-z]' "$reqs") pinned packages"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
	--no-deps --ignore-requires-python "rasa==$RASA_VERSION" -r "$reqs" >&2 ||
	die "pip install failed (see above)"
log "checking that Rasa's event brokers import"
(cd "$venv" && "$venv/bin/python" -c "$verify") >&2 ||
	die "Rasa's brokers do not import in $venv (see the traceback above)"
echo "$stamp_want" >"$stamp"
log "ready in $((SECONDS - start))s"
echo "$venv/bin/python"
