#!/usr/bin/env bash
# Headless Chromium and its WebDriver (Debian), and Selenium's WebDriver client
# (PyPI), for the dashboard test. No browser download: the Debian build is used.
set -euo pipefail
source "$(dirname "$0")/../install-lib.sh"
apt_install chromium chromium-driver
pip_install "selenium>=4.20"
