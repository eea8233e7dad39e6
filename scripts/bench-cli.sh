#!/usr/bin/env bash
# Benchmarks of the lqx CLI (docs/BENCHMARKS-cli.md), release builds, with hyperfine:
#   1. `lqx --version` start-up time;
#   2. `lqx vm list -o json` against a local lqx-server holding 1,000 VMs, compared in the
#      same hyperfine run with curl making the same call (ListVMs, Connect JSON).
# Needs hyperfine and curl (apt-get install -y hyperfine curl).
# Env: RUNS (default 30), VMS (default 1000), SKIP_BUILD=1 to use existing release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-30}"
VMS="${VMS:-1000}"
for tool in hyperfine curl; do
  command -v "$tool" >/dev/null || { echo "bench-cli: $tool is needed (apt-get install -y $tool)" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -p lqx-cli -p lqx-server
fi
TARGET="${CARGO_TARGET_DIR:-target}/release"
LQX="$(cd "$TARGET" && pwd)/lqx"
SERVER_BIN="$(cd "$TARGET" && pwd)/lqx-server"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A simulated cluster: 10 large hosts, $VMS running VMs.
{
  echo "nodes:"
  for i in $(seq 1 10); do echo "  - {name: node-$i, cpu_cores: 1024, memory_mib: 4194304}"; done
  echo "vms:"
  for i in $(seq 0 $((VMS - 1))); do
    printf '  - {name: vm-%04d, node: node-%d, cpu_cores: 2, memory_mib: 2048}\n' "$i" $((i % 10 + 1))
  done
} >"$WORK/cluster.yaml"

PASSWORD="bench-admin-password-0123"
LQX_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" LQX_LOG=warn "$SERVER_BIN" \
  --listen 127.0.0.1:0 --data-dir "$WORK/data" --sim "$WORK/cluster.yaml" 2>"$WORK/server.log" >/dev/null &
SERVER_PID=$!
START=$SECONDS
ADDR=""
for _ in $(seq 1 600); do
  ADDR="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$WORK/server.log" | head -1)"
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.5
done
[ -n "$ADDR" ] || { echo "bench-cli: lqx-server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
echo "lqx-server with $VMS simulated VMs listening on $ADDR after $((SECONDS - START)) s"

export LQX_CONFIG_DIR="$WORK/config" LQX_TOKEN_STORAGE=file NO_COLOR=1
unset LQX_TOKEN LQX_SERVER LQX_CONTEXT LQX_OUTPUT
echo "$PASSWORD" | "$LQX" login "$ADDR" --username admin --password-stdin
TOKEN="$("$LQX" auth token)"

# Sanity: both return the same $VMS VMs.
n_lqx="$("$LQX" vm list -o name | wc -l)"
body="$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"pageSize":1000}' "$ADDR/limiquantix.compute.v1.VMService/ListVMs")"
n_curl="$(printf '%s' "$body" | grep -o '"memoryMib"' | wc -l)"
echo "lqx lists $n_lqx VMs; curl's answer holds $n_curl VM specs ($(printf '%s' "$body" | wc -c) bytes);" \
  "lqx -o json prints $("$LQX" vm list -o json | wc -c) bytes"
[ "$n_lqx" -eq "$VMS" ] || { echo "bench-cli: expected $VMS VMs" >&2; exit 1; }

echo
echo "## lqx --version"
hyperfine -N --warmup 10 --runs "$((RUNS * 3))" --export-csv "$WORK/version.csv" "$LQX --version"

echo
echo "## lqx vm list -o json vs curl ($VMS VMs)"
CURL="curl -sf -o /dev/null -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' -d '{\"pageSize\":1000}' $ADDR/limiquantix.compute.v1.VMService/ListVMs"
hyperfine -N --warmup 3 --runs "$RUNS" --export-csv "$WORK/list.csv" \
  -n curl "$CURL" \
  -n "lqx -o json" "$LQX vm list -o json" \
  -n "lqx (table)" "$LQX vm list" \
  -n "lqx -o json (LQX_TOKEN)" "env LQX_TOKEN=$TOKEN LQX_SERVER=$ADDR $LQX vm list -o json"

# Ratio of the means (hyperfine CSV: command,mean,stddev,median,user,system,min,max).
awk -F, 'NR == 2 { curl = $2; curlmed = $4; curlmin = $7 }
  NR > 2 { printf "%-26s mean %.2fx curl (%.1f vs %.1f ms), median %.2fx, min %.2fx\n", $1, $2 / curl, $2 * 1000, curl * 1000, $4 / curlmed, $7 / curlmin }' \
  "$WORK/list.csv"
ratio="$(awk -F, 'NR == 2 { curl = $2 } NR == 3 { printf "%.2f", $2 / curl }' "$WORK/list.csv")"
if awk -v r="$ratio" 'BEGIN { exit !(r <= 1.5) }'; then
  echo "goal met: lqx vm list -o json is ${ratio}x curl (goal <= 1.5x)"
else
  echo "goal missed: lqx vm list -o json is ${ratio}x curl (goal <= 1.5x)"
fi
