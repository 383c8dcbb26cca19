#!/usr/bin/env bash
# Installs Cyclone DDS's Python binding (PyPI `cyclonedds`) into the test venv.
# Used by switchboard-codec's golden-vector tests (IdlStruct.serialize/deserialize,
# no network, no participant) and by the DDS adapter's interop tests. Idempotent.
set -euo pipefail
VENV="${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if "$VENV/bin/python" -c 'import cyclonedds.idl' >/dev/null 2>&1; then
    exit 0
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check cyclonedds
"$VENV/bin/python" -c 'import cyclonedds.idl'
