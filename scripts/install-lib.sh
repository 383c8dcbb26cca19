# Helpers for scripts/install.d/*.sh (sourced, not run).

# apt_install PKG...: installs the Debian packages that are missing; runs
# `apt-get update` once per test run, only when something is missing.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ ! -f "${SWITCHBOARD_APT_UPDATED:-/nonexistent}" ]; then
    $sudo apt-get update -qq
    export SWITCHBOARD_APT_UPDATED="${TMPDIR:-/tmp}/switchboard-apt-updated.$$"
    touch "$SWITCHBOARD_APT_UPDATED"
  fi
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pip_install PKG...: installs Python packages into the test venv when missing.
pip_install() {
  local missing=()
  for p in "$@"; do
    local name="${p%%[=<>]*}"
    "$SWITCHBOARD_VENV/bin/python" -m pip show -q "$name" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "pip installing: ${missing[*]}"
  "$SWITCHBOARD_VENV/bin/python" -m pip install -q "${missing[@]}"
}
