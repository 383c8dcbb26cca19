#!/usr/bin/env bash
# Peers of the MQTT tests: the mosquitto broker and its command-line clients,
# and openssl (the TLS tests generate their certificates with it). The tests
# start their own brokers on ephemeral ports; the packaged service is not used.
set -euo pipefail
source "$(dirname "$0")/../install-lib.sh"
apt_install mosquitto mosquitto-clients openssl
(systemctl disable --now mosquitto >/dev/null 2>&1 || true)
