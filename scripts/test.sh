#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what it needs, starts a
# throwaway PostgreSQL on loopback (so every store and end-to-end test also runs on
# PostgreSQL), then checks formatting, lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-shot CI build gains nothing from incremental caches, which double target/'s size.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
# Say so plainly when the disk is nearly full, rather than dying mid-link with ENOSPC.
avail_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ "${avail_kb:-0}" -lt 8000000 ]; then
  echo "warning: only $((avail_kb / 1024)) MiB free here; a full build and test run needs about 5 GiB" >&2
fi
bash scripts/setup-deps.sh
# A throwaway PostgreSQL for this run only: its own directory and a free port, stopped (and
# removed) when the script exits, however it exits.
PGDIR=$(mktemp -d /tmp/lqx-test-pg.XXXXXX)
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
export PGDIR PGPORT
stop_postgres() {
  local bin as=""
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ "$(id -u)" = 0 ]; then as="runuser -u postgres --"; fi
  [ -n "$bin" ] && $as "$bin/pg_ctl" -D "$PGDIR" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap stop_postgres EXIT
eval "$(bash .ci/start-postgres.sh)"
export LQX_TEST_DATABASE_URL
cargo fmt --all -- --check
# Dependencies (deny.toml): licences, bans (duplicates warn), sources, and RustSec advisories
# when the advisory database can be fetched; where it cannot (no route to it), that is said
# and the other checks still run.
if cargo deny fetch db >/dev/null 2>&1; then
  cargo deny --log-level error check
else
  echo "warning: RustSec advisory database unreachable: cargo deny checks licences, bans and sources only" >&2
  cargo deny --log-level error check licenses bans sources
fi
cargo clippy --workspace --all-targets --locked -- -D warnings
# The CLI alone, as `cargo install --path lqx-cli` builds it: lqx-core without its server
# feature (a workspace build unifies features and hides a module that needs them).
cargo check -p lqx-cli --locked
# The end-to-end tests run the real binaries: build them first (cargo test alone does not
# build lqx-server, which has no integration tests of its own).
cargo build --workspace --locked --bins
cargo test --workspace --locked --no-fail-fast "$@"
# Each step of every multi-step operation made to fail and crash in turn (lqx-core's
# `failpoints` feature: test builds only).
cargo clippy -p lqx-core --locked --features failpoints --test sagas -- -D warnings
cargo test -p lqx-core --locked --features failpoints --test sagas
# Real QEMU: a guest live-migrated between two private libvirtd instances through lqx (and by
# DRS), ~35 s. It needs root (mount namespaces, libvirtd); as another user it is skipped.
if [ "$(id -u)" = 0 ]; then
  NO_BUILD=1 bash scripts/live-migration-smoke.sh
else
  echo "skipping scripts/live-migration-smoke.sh: it needs root" >&2
fi
