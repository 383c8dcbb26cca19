#!/usr/bin/env bash
# Peers of the MQTT tests: the mosquitto broker and its command-line clients,
# and openssl (the TLS tests generate their certificates with it).
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if have mosquitto && have mosquitto_pub && have mosquitto_sub && have openssl; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends mosquitto mosquitto-clients openssl
# The tests start their own brokers; the packaged service is not needed.
(systemctl disable --now mosquitto >/dev/null 2>&1 || true)
