#!/usr/bin/env bash
# DDS peers for the switchboard-dds tests and benches: Cyclone DDS's Python
# binding (the test peer) in the project venv, ddsperf (cyclonedds-tools), and
# iproute2 for the loopback-only network namespace the DDS tests run in.
# Idempotent: does nothing when everything is present.
set -euo pipefail

VENV="${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import cyclonedds' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet 'cyclonedds==11.0.1'
fi

missing=()
command -v ddsperf >/dev/null 2>&1 || missing+=(cyclonedds-tools)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
