#!/usr/bin/env bash
# Real WebSocket clients for the tests: Python `websockets`, and paho-mqtt for MQTT over WebSocket.
set -euo pipefail
source "$(dirname "$0")/../install-lib.sh"
pip_install "websockets>=13" "paho-mqtt>=2"
