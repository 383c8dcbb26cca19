#!/usr/bin/env bash
# Runs a command inside a new network namespace that has only loopback, with
# multicast on and 224.0.0.0/4 routed to lo: DDS discovery (and anything
# else) can never leave the machine. Needs root (or CAP_SYS_ADMIN).
#   scripts/in-netns.sh CMD [ARGS...]
set -euo pipefail
exec unshare -n sh -c 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"' sh "$@"
