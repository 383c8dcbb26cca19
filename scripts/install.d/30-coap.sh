#!/usr/bin/env bash
# CoAP test peers: libcoap's coap-client-notls / coap-server-notls (Debian
# libcoap3-bin) and aiocoap (PyPI, into the test venv). Idempotent.
set -euo pipefail
source "$(dirname "$0")/../install-lib.sh"
apt_install libcoap3-bin
pip_install aiocoap
