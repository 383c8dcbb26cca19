#!/usr/bin/env bash
# Peers of the MQTT tests: the mosquitto broker and its command-line clients.
set -euo pipefail
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
  if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends mosquitto mosquitto-clients openssl
# The tests start their own brokers; the packaged service is not needed.
(systemctl disable --now mosquitto >/dev/null 2>&1 || true)
