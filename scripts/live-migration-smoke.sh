#!/usr/bin/env bash
# Real live migration between two hosts on one machine:
#
#   sudo bash scripts/live-migration-smoke.sh
#
# Starts two libvirtd instances, each in its own mount namespace (private /run/libvirt,
# /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt under a temporary
# directory; the system's sockets and directories are never used), with distinct host UUIDs,
# listening on loopback TCP without authentication (a lab set-up: see docs/operations.md for
# real transports). A control plane (`--dev`) and two `lqx-server agent` processes join as
# hosts A and B; a 64 MiB diskless guest is created running on A and moved with
# `lqx vm migrate --to B --wait`. Checked with virsh: on B the domain runs with reason
# `migrated` and its QEMU process was started for an incoming migration (`-incoming`), B's
# event stream never shows it stopped, and A no longer has it. QEMU uses KVM when libvirt can,
# else TCG. Prints the migration's job statistics (downtime, total time) from libvirt.
#
# Needs root (libvirtd, mount namespaces). Not part of CI: see docs/operations.md.
set -euo pipefail
cd "$(dirname "$0")/.."
start_time=$(date +%s)
if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 2; fi
command -v libvirtd >/dev/null && command -v qemu-system-x86_64 >/dev/null || {
  echo "needs libvirt-daemon-system and qemu-system-x86 (apt-get install them)" >&2
  exit 2
}
MEMORY_MIB=${MEMORY_MIB:-64}

WORK=$(mktemp -d /tmp/lqx-livemig.XXXXXX)
PIDS=()
cleanup() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  # QEMU processes of our guests (started by our libvirtds, named after our VM).
  if [ -n "${ID:-}" ]; then pkill -f "guest=lqx-$ID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One libvirtd in its own mount namespace. $1: name, $2: TCP port, $3: first QEMU migration port.
start_libvirtd() {
  local name=$1 port=$2 mport=$3 d=$WORK/$1
  mkdir -p "$d"/{run,lib/images,cache,log,etc} /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
  cp -a /etc/libvirt/. "$d/etc/"
  # A warm QEMU capabilities cache saves libvirtd a minute of probing, when there is one.
  if [ -d /var/cache/libvirt/qemu/capabilities ]; then
    mkdir -p "$d/cache/qemu" && cp -a /var/cache/libvirt/qemu/capabilities "$d/cache/qemu/" 2>/dev/null || true
  fi
  cat >"$d/etc/libvirtd.conf" <<EOF
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$port"
auth_tcp = "none"
auth_unix_rw = "none"
host_uuid = "$(python3 -c 'import uuid; print(uuid.uuid4())')"
EOF
  cat >"$d/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
migration_address = "$HOST_IP"
migration_host = "$HOST_IP"
migration_port_min = $mport
migration_port_max = $((mport + 15))
EOF
  unshare --mount --propagation private -- bash -c "
    mount --bind '$d/run' /run/libvirt
    mount --bind '$d/lib' /var/lib/libvirt
    mount --bind '$d/cache' /var/cache/libvirt
    mount --bind '$d/log' /var/log/libvirt
    mount --bind '$d/etc' /etc/libvirt
    exec libvirtd --listen --pid-file '$d/libvirtd.pid'
  " >"$d/libvirtd.log" 2>&1 &
  PIDS+=($!)
}

wait_libvirtd() { # $1: URI. Ready once QEMU capabilities are probed (can take > 30 s).
  local deadline=$((SECONDS + 240))
  until virsh -c "$1" domcapabilities --virttype qemu >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "libvirtd at $1 not ready after 240 s" >&2; return 1; fi
    sleep 1
  done
}

# QEMU's migration stream goes to this address (libvirt refuses a loopback one).
HOST_IP=${HOST_IP:-$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)}
[ -n "$HOST_IP" ] || { echo "no non-loopback IPv4 address for the migration stream (set HOST_IP)" >&2; exit 2; }
PA=$(free_port); PB=$(free_port)
start_libvirtd a "$PA" 49200
start_libvirtd b "$PB" 49300
URI_A="qemu+tcp://127.0.0.1:$PA/system"
URI_B="qemu+tcp://127.0.0.1:$PB/system"
t=$SECONDS
wait_libvirtd "$URI_A"
wait_libvirtd "$URI_B"
echo "two libvirtd ready in $((SECONDS - t)) s: $URI_A, $URI_B"
if virsh -c "$URI_A" domcapabilities --virttype kvm >/dev/null 2>&1; then echo "KVM usable"; else echo "KVM not usable: QEMU TCG"; fi

if [ -z "${NO_BUILD:-}" ]; then cargo build -q -p lqx-server -p lqx-cli; fi
BIN=$PWD/target/debug/lqx-server
LQX=$PWD/target/debug/lqx
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
PW=smoke-admin-password-0123
LQX_BOOTSTRAP_ADMIN_PASSWORD=$PW "$BIN" --dev --listen 127.0.0.1:$PORT --data-dir "$WORK/cp" \
  >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 150); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.2; done

export LQX_CONFIG_DIR="$WORK/cli" LQX_TOKEN_STORAGE=file NO_COLOR=1
unset LQX_TOKEN LQX_SERVER LQX_CONTEXT LQX_OUTPUT
echo "$PW" | "$LQX" login "$URL" --username admin --password-stdin >/dev/null

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }
for h in a b; do
  uri_var=URI_${h^^}
  JOIN=$("$LQX" node join-token --node-name "host-$h" -o json | json "['token']")
  LQX_JOIN_TOKEN=$JOIN "$BIN" agent --control-plane "$URL" --libvirt "${!uri_var}" \
    --migration-uri "${!uri_var}" --heartbeat-interval 1s \
    --data-dir "$WORK/agent-$h" --name "host-$h" >"$WORK/agent-$h.log" 2>&1 &
  PIDS+=($!)
done
for h in a b; do
  for _ in $(seq 150); do "$LQX" node get "host-$h" >/dev/null 2>&1 && break; sleep 0.2; done
done
sleep 3 # a heartbeat with the migration URI

"$LQX" vm create smoke --node host-a --cpu 1 --memory "${MEMORY_MIB}MiB" --start -o json >"$WORK/vm.json"
ID=$(json "['id']" <"$WORK/vm.json")
DOM=lqx-$ID
virsh -c "$URI_A" domstate "$DOM" | grep -qx running
echo "created on host-a: $DOM running"
if [ -n "${DIRTY:-}" ]; then echo "(the guest has no OS; DIRTY is not supported by this script)"; fi

virsh -c "$URI_B" event --all --loop >"$WORK/events-b.txt" 2>&1 &
EVENTS=$!
PIDS+=($EVENTS)
t0=$(date +%s.%N)
"$LQX" vm migrate smoke --to host-b --wait
t1=$(date +%s.%N)
echo "lqx vm migrate --wait took $(python3 -c "print(round($t1-$t0,2))") s"

state=$(virsh -c "$URI_B" domstate "$DOM" --reason)
echo "on host-b: $state"
[ "$state" = "running (migrated)" ] || { echo "FAIL: expected running (migrated) on B"; exit 1; }
if virsh -c "$URI_A" list --all --name | grep -qx "$DOM"; then echo "FAIL: A still has $DOM"; exit 1; fi
QPID=$(virsh -c "$URI_B" qemu-monitor-command "$DOM" --hmp "info status" >/dev/null 2>&1; pgrep -f "guest=$DOM" | head -1)
if ! tr '\0' ' ' <"/proc/$QPID/cmdline" | grep -q -- "-incoming"; then
  echo "FAIL: QEMU on B ($QPID) was not started for an incoming migration"; exit 1
fi
echo "QEMU on B (pid $QPID) was started with -incoming"
sleep 2
kill "$EVENTS" 2>/dev/null || true
if grep -q "Stopped\|Shutdown\|Crashed" "$WORK/events-b.txt"; then
  echo "FAIL: the domain stopped on B:"; cat "$WORK/events-b.txt"; exit 1
fi
echo "B's events: $(tr '\n' ';' <"$WORK/events-b.txt")"
echo "--- job statistics of the migration (libvirt, on B) ---"
virsh -c "$URI_B" domjobinfo "$DOM" --completed || true
REC=$("$LQX" vm get smoke -o json)
echo "$REC" | json "['node']" | grep -qx host-b || { echo "FAIL: record not on host-b: $REC"; exit 1; }
echo "lqx vm get: on host-b, $(echo "$REC" | json "['state']")"
echo "live migration smoke test passed in $(( $(date +%s) - start_time )) s"
