#!/usr/bin/env bash
# Runs the DDS end-to-end bench (crates/switchboard-dds/benches/dds_bridge.rs)
# against Cyclone DDS's ddsperf inside a loopback-only network namespace.
# Builds (release: the bench and the bridge binary its MQTT leg runs) outside
# the namespace first. Arguments: "64" or "KiB" pick a size; "mqtt" runs only
# the MQTT leg, "nomqtt" skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example bridge
cargo bench -p switchboard-dds --bench dds_bridge --no-run
exec unshare -n sh -c 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"' sh \
    cargo bench --offline -p switchboard-dds --bench dds_bridge -- "$@"
