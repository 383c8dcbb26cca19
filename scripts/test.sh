#!/usr/bin/env bash
# The one test command: installs every tool the tests need (Debian packages,
# Python packages in a venv), then runs the format check, clippy, docs, the
# doc examples, and every test (inside a loopback-only network namespace, because DDS tests open
# participants) including the fuzz corpus replays. Works on a fresh Debian
# machine as root.
#
# Environment:
#   CARGO_TARGET_DIR   default ~/.cache/switchboard/target (outside the clone,
#                      so a fresh clone on the same machine reuses the build)
#   SWITCHBOARD_VENV   default ~/.cache/switchboard/venv
set -euo pipefail
cd "$(dirname "$0")/.."
export SWITCHBOARD_VENV="${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv}"
export SWITCHBOARD_PYTHON="$SWITCHBOARD_VENV/bin/python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"
step() { printf '\n==> %s\n' "$*"; }

step "installing test peers and tools"
for f in scripts/install.d/*.sh; do
  bash "$f"
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "building tests and examples"
cargo build --workspace --examples --quiet
cargo nextest run --workspace --no-run --cargo-quiet

step "doc examples (nextest does not run doctests)"
cargo test --workspace --doc --quiet

step "fuzz targets compile"
cargo check --manifest-path fuzz/Cargo.toml --bins --quiet

step "tests (all of them, inside a loopback-only network namespace)"
# DDS tests open participants whose discovery multicasts must never leave the
# machine; every other test only uses 127.0.0.1 too, so the whole suite runs in
# one namespace that has nothing but loopback (built above, so --offline).
scripts/in-netns.sh cargo nextest run --offline --workspace --no-fail-fast
step "all tests passed"
