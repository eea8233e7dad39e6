#!/usr/bin/env bash
# The hostile-mix benchmark (docs/BENCHMARKS.md, "Under hostile clients"), release build:
# throughput and p99 of authenticated GetVM and ListVMs (Connect JSON, wrk) from well-behaved
# clients, first alone, then while hostile clients run next to them on loopback:
#   - IDLE idle connections (connect, never send a byte),
#   - SLOW slowloris connections (a header byte every 200 ms) and SLOW slow bodies,
#   - junk POSTs to unique 4 KB paths under real and made-up services, without credentials,
#   - logins reset (TCP RST) 0-20 ms after sending.
# Also the server's peak RSS and the audit rows written per hostile request.
# Needs wrk, curl and python3 (apt-get install -y wrk curl python3). Not run in CI.
# Env: DURATION (wrk seconds per run, default 20), CONNS (wrk connections, default 16),
#      IDLE (default 1000), SLOW (default 100), SKIP_BUILD=1 to use an existing release build.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-20}"
CONNS="${CONNS:-16}"
IDLE="${IDLE:-1000}"
SLOW="${SLOW:-100}"
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-hostile: $tool is needed (apt-get install -y $tool)" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -p lqx-server
fi
SERVER_BIN="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/lqx-server"

WORK="$(mktemp -d)"
SERVER_PID=""
HOSTILE_PID=""
cleanup() {
  for p in "$HOSTILE_PID" "$SERVER_PID"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

PASSWORD="bench-admin-password-0123"
LQX_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" LQX_LOG=warn "$SERVER_BIN" --dev --listen 127.0.0.1:0 \
  --data-dir "$WORK/data" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  ADDR="$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$WORK/server.log" | head -1)"
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$WORK/server.log"; exit 1; }
BASE="http://$ADDR"
call() { curl -sS -X POST -H 'Content-Type: application/json' ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -d "$2" "$BASE/$1"; }
TOKEN="$(call limiquantix.auth.v1.AuthService/Login "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')"
export TOKEN
call limiquantix.compute.v1.VMService/CreateVM \
  '{"name":"bench-vm","spec":{"cpuCores":1,"memoryMib":256,"disks":[{"name":"root","sizeMib":1024}]}}' >/dev/null
for i in $(seq 1 50); do
  call limiquantix.compute.v1.VMService/CreateVM \
    "{\"name\":\"fill-$i\",\"spec\":{\"cpuCores\":1,\"memoryMib\":128,\"disks\":[{\"name\":\"root\",\"sizeMib\":1024}]}}" >/dev/null
done

audit_rows() {
  python3 - "$BASE" "$TOKEN" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
n, page = 0, ""
while True:
    req = urllib.request.Request(f"{base}/limiquantix.auth.v1.AuthService/ListAuditEntries",
        data=json.dumps({"pageSize": 1000, "pageToken": page}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    body = json.load(urllib.request.urlopen(req))
    n += len(body.get("entries", []))
    page = body.get("nextPageToken", "")
    if not page:
        print(n); break
PY
}

cat > "$WORK/getvm.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"id":"bench-vm"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
LUA
cat > "$WORK/listvms.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"pageSize":50}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
LUA

run_wrk() { # label script path
  local out
  out="$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/$2" "$BASE/$3")"
  local rps p50 p99 non2xx
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
  p99="$(echo "$out" | awk '$1=="99%" {print $2}')"
  non2xx="$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo "| run | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
run_wrk "GetVM, alone" getvm.lua limiquantix.compute.v1.VMService/GetVM
run_wrk "ListVMs (50 per page), alone" listvms.lua limiquantix.compute.v1.VMService/ListVMs
ROWS_BEFORE="$(audit_rows)"

# The hostile clients, for as long as the two measured runs last (plus set-up).
python3 - "$ADDR" "$IDLE" "$SLOW" "$((DURATION * 2 + 5))" >"$WORK/hostile.out" <<'PY' &
import asyncio, json, random, socket, struct, sys, time
host, port = sys.argv[1].rsplit(":", 1)
port, idle, slow, secs = int(port), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
end = time.monotonic() + secs
count = {"idle": 0, "slowloris": 0, "slow_body": 0, "junk": 0, "aborted_login": 0}

async def idle_conn():
    while time.monotonic() < end:
        try:
            r, w = await asyncio.open_connection(host, port)
            count["idle"] += 1
            await asyncio.wait_for(r.read(), timeout=max(0.1, end - time.monotonic()))
            w.close()
        except Exception:
            await asyncio.sleep(0.5)

async def slowloris():
    while time.monotonic() < end:
        try:
            r, w = await asyncio.open_connection(host, port)
            count["slowloris"] += 1
            w.write(b"POST /limiquantix.auth.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while time.monotonic() < end:
                w.write(b"a"); await w.drain(); await asyncio.sleep(0.2)
        except Exception:
            await asyncio.sleep(0.2)

async def slow_body():
    while time.monotonic() < end:
        try:
            r, w = await asyncio.open_connection(host, port)
            count["slow_body"] += 1
            w.write(b"POST /limiquantix.auth.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"user")
            await w.drain()
            await asyncio.wait_for(r.read(), timeout=max(0.1, end - time.monotonic()))
            w.close()
        except Exception:
            await asyncio.sleep(0.2)

async def junk():
    i = 0
    while time.monotonic() < end:
        i += 1
        path = (f"/limiquantix.compute.v1.VMService/X{i}" + "a" * 4000) if i % 2 else f"/limiquantix.junk{i}.Svc/{random.getrandbits(64)}"
        try:
            r, w = await asyncio.open_connection(host, port)
            w.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode())
            await w.drain(); await r.read(); w.close()
            count["junk"] += 1
        except Exception:
            pass
        await asyncio.sleep(0.01)

async def aborted_login():
    i = 0
    while time.monotonic() < end:
        i += 1
        body = json.dumps({"username": f"guess-{i}", "password": "not-the-password"}).encode()
        try:
            r, w = await asyncio.open_connection(host, port)
            w.write(b"POST /limiquantix.auth.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await w.drain()
            await asyncio.sleep(random.uniform(0, 0.02))
            s = w.get_extra_info("socket")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
            count["aborted_login"] += 1
        except Exception:
            pass
        await asyncio.sleep(0.02)

async def main():
    tasks = [idle_conn() for _ in range(idle)] + [slowloris() for _ in range(slow)] \
        + [slow_body() for _ in range(slow)] + [junk() for _ in range(4)] + [aborted_login() for _ in range(2)]
    await asyncio.gather(*tasks)
    print(json.dumps(count))
asyncio.run(main())
PY
HOSTILE_PID=$!
sleep 3
run_wrk "GetVM, hostile mix" getvm.lua limiquantix.compute.v1.VMService/GetVM
run_wrk "ListVMs (50 per page), hostile mix" listvms.lua limiquantix.compute.v1.VMService/ListVMs
wait "$HOSTILE_PID" || true
HOSTILE_PID=""
sleep 1
ROWS_AFTER="$(audit_rows)"
METRICS_BYTES="$(curl -sS "$BASE/metrics" | wc -c)"
echo
echo "hostile connections/requests: $(cat "$WORK/hostile.out")"
python3 - "$(cat "$WORK/hostile.out")" "$ROWS_BEFORE" "$ROWS_AFTER" <<'PY'
import json, sys
c = json.loads(sys.argv[1]); requests = c["junk"] + c["aborted_login"] + c["slow_body"]
rows = int(sys.argv[3]) - int(sys.argv[2])
print(f"audit rows written during the mix: {rows} for {requests} hostile requests ({rows / max(1, requests):.4f} per request)")
PY
echo "peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/"$SERVER_PID"/status); /metrics: $METRICS_BYTES bytes"
echo "in flight after: $(curl -sS "$BASE/metrics" | awk '/^lqx_requests_in_flight/ {print $2}'), connections open: $(curl -sS "$BASE/metrics" | awk '/^lqx_connections_open/ {print $2}')"
