#!/usr/bin/env bash
# scripts/chromium.sh: install Debian's chromium for the browser tests of the
# web UI (ui/browsertest), idempotently, and print where it is:
#
#   eval "$(scripts/chromium.sh)"     # exports PARLEY_CHROMIUM=/usr/bin/chromium
#
# Only the `export` line goes to stdout; apt's output goes to stderr. The
# tests run it headless with --no-sandbox (CI runs as root).
set -euo pipefail

find_chromium() {
    local c
    for c in chromium chromium-browser; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if ! bin=$(find_chromium); then
    echo "[chromium] installing Debian's chromium" >&2
    sudo=()
    if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    # Other jobs may hold apt's lock: wait for it rather than fail.
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
    bin=$(find_chromium) || { echo "[chromium] ERROR: chromium still missing after apt-get install" >&2; echo false; exit 1; }
fi
echo "export PARLEY_CHROMIUM='$bin'"
