#!/usr/bin/env bash
# Starts a ready playground: lqx-server --dev (embedded SQLite in ./lqx-data, three hosts on
# libvirt's test driver with simulated demand, an admin account), after installing what the
# server needs to build (libvirt's library). The `lqx` CLI is built next to it:
# ./target/release/lqx. Runs in the foreground (Ctrl-C stops it); running it again on the
# same ./lqx-data is safe.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh --server-only
cargo build --release --locked -p lqx-server -p lqx-cli
echo "lqx-server --dev runs in the foreground; use the CLI from another terminal (see README.md, Quick start)." >&2
exec ./target/release/lqx-server --dev --data-dir "${LQX_DATA_DIR:-./lqx-data}" "$@"
