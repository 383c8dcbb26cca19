#!/usr/bin/env bash
# Runs every test that opens a DDS participant inside a loopback-only network
# namespace, so that DDS discovery multicast never leaves the machine: the
# switchboard-dds crate's tests and the root black-box tests named `dds_*`.
# Builds outside the namespace first (cargo needs no network once built).
# Extra arguments go to cargo nextest (e.g. `-E 'test(keyed)'`).
set -euo pipefail
cd "$(dirname "$0")/.."
export SWITCHBOARD_VENV="${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv}"
export SWITCHBOARD_PYTHON="${SWITCHBOARD_PYTHON:-$SWITCHBOARD_VENV/bin/python}"
filter='package(switchboard-dds) or test(/^dds_/)'
cargo build --examples --quiet
cargo nextest run --workspace --no-run --cargo-quiet -E "$filter"
exec unshare -n sh -c 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"' sh \
    cargo nextest run --offline --workspace --no-fail-fast -E "$filter" "$@"
