#!/usr/bin/env bash
# Base tools every test run needs: curl (HTTP client in tests), iproute2 and
# util-linux (network namespaces for DDS tests), the Python venv, nextest.
set -euo pipefail
source "$(dirname "$0")/../install-lib.sh"
apt_install curl ca-certificates iproute2 util-linux procps
if [ ! -x "$SWITCHBOARD_VENV/bin/python" ]; then
  mkdir -p "$(dirname "$SWITCHBOARD_VENV")"
  python3 -m venv "$SWITCHBOARD_VENV" || { apt_install python3-venv; python3 -m venv "$SWITCHBOARD_VENV"; }
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
