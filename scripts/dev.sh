#!/usr/bin/env bash
# Starts a ready playground: lqx-server --dev (embedded SQLite in ./lqx-data, three hosts on
# libvirt's test driver, an admin account), after installing what the build needs. The `lqx`
# CLI is built next to it: ./target/release/lqx.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cargo build --release --locked -p lqx-server -p lqx-cli
exec ./target/release/lqx-server --dev --data-dir "${LQX_DATA_DIR:-./lqx-data}" "$@"
