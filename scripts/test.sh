#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what it needs, starts a
# throwaway PostgreSQL on loopback (so every store and end-to-end test also runs on
# PostgreSQL), then checks formatting, lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
eval "$(bash .ci/start-postgres.sh)"
export LQX_TEST_DATABASE_URL
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the real binaries: build them first (cargo test alone does not
# build lqx-server, which has no integration tests of its own).
cargo build --workspace --locked --bins
cargo test --workspace --locked --no-fail-fast "$@"
