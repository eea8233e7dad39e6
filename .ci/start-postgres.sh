#!/usr/bin/env bash
# Installs (if needed) and starts a throwaway PostgreSQL on loopback, then prints the URL
# to use: `eval "$(.ci/start-postgres.sh)"` exports LQX_TEST_DATABASE_URL.
# Runs as root by giving the server to the `postgres` user, as Debian's package expects.
set -euo pipefail
PGPORT="${PGPORT:-54329}"
PGDIR="${PGDIR:-/tmp/lqx-pg}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; else AS=""; fi
if ! $AS "$BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
  rm -rf "$PGDIR"
  mkdir -p "$PGDIR"
  [ -n "$AS" ] && chown postgres:postgres "$PGDIR"
  $AS "$BIN/initdb" -D "$PGDIR" -A trust -U postgres >/dev/null
  $AS "$BIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/log" \
    -o "-k $PGDIR -p $PGPORT -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" -w start >&2
fi
echo "export LQX_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/postgres"
