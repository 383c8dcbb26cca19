#!/usr/bin/env bash
# Runs the switchboard-dds tests inside a loopback-only network namespace, so
# that DDS discovery multicast never leaves the machine. Builds outside the
# namespace first (cargo needs no network once built). Extra arguments go to
# cargo nextest (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
export SWITCHBOARD_VENV="${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv}"
export SWITCHBOARD_PYTHON="${SWITCHBOARD_PYTHON:-$SWITCHBOARD_VENV/bin/python}"
cargo nextest run -p switchboard-dds --no-run
exec unshare -n sh -c 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"' sh \
    cargo nextest run --offline -p switchboard-dds --no-fail-fast "$@"
