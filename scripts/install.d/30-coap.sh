#!/usr/bin/env bash
# CoAP test peers: libcoap's coap-client-notls / coap-server-notls (Debian
# libcoap3-bin) and aiocoap (PyPI, into the test venv). Idempotent.
set -euo pipefail
if ! command -v coap-client-notls >/dev/null || ! command -v coap-server-notls >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y --no-install-recommends libcoap3-bin
fi
VENV="${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import aiocoap' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet aiocoap
fi
