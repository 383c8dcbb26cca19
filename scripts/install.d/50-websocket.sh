#!/usr/bin/env bash
# A real WebSocket client for the tests: Python's `websockets`.
set -euo pipefail
source "$(dirname "$0")/../install-lib.sh"
pip_install "websockets>=13"
