#!/usr/bin/env bash
# Runs parley_rasa's tests against another Rasa 3.x than CI's 3.6.21:
#
#   integrations/rasa/other-rasa.sh 3.0.13 [pytest args]
#
# The venv (Python 3.10, cached under ${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache)
# holds `rasa==VERSION --no-deps` with bench/rasa/requirements.txt (3.6.21's
# set, which older 3.x import as well) plus what older releases import
# besides: async_generator (3.0's lock store) and kafka-python (its Kafka
# broker's client, before Rasa moved to confluent-kafka). Environment as
# test.sh.
set -euo pipefail
version=${1:?usage: other-rasa.sh RASA_VERSION [pytest args]}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${PARLEY_SERVICES_DIR:-/tmp/parley-services}/cache/rasa-$version-nodeps
python=${PARLEY_RASA_E2E_PYTHON:-}
if [[ -z $python ]]; then
	if python3.10 -V >/dev/null 2>&1; then
		python=python3.10
	else
		python=$(ls -d "$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 2>/dev/null | tail -1)
	fi
fi
[[ -n $python ]] || { echo "other-rasa: no Python 3.10" >&2; exit 2; }
stamp_want="rasa=$version $(sha256sum "$root/bench/rasa/requirements.txt" "$here/requirements-test.txt" | cut -c1-16 | tr '\n' ' ')"
exec 9>"$venv.lock"
flock 9
if ! [[ -f $venv/.stamp && $(<"$venv/.stamp") == "$stamp_want" ]]; then
	echo "other-rasa: building $venv" >&2
	rm -rf "$venv"
	"$python" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile --no-deps \
		--ignore-requires-python "rasa==$version" -r "$root/bench/rasa/requirements.txt" \
		-r "$here/requirements-test.txt" async_generator==1.10 kafka-python==2.0.2 >&2
	echo "$stamp_want" >"$venv/.stamp"
fi
(cd "$root" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
	--no-build-isolation --force-reinstall ./integrations/rasa) >&2
rm -rf "$here/build" "$here"/*.egg-info
flock -u 9
if [[ -z ${PARLEY_BIN:-} ]]; then
	bindir=$(mktemp -d "${TMPDIR:-/tmp}/parley-rasa-bin.XXXXXX")
	trap 'rm -rf "$bindir"' EXIT
	PARLEY_BIN=$bindir/parley
	(cd "$root" && go build -o "$PARLEY_BIN" ./cmd/parley)
	export PARLEY_BIN
fi
"$venv/bin/python" -c "import rasa.version as v; print('other-rasa: Rasa', v.__version__)" >&2
cd "$here" && "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$@"
