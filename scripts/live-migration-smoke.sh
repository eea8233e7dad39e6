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
# GUEST_CPU (default kvm64) is the cluster's guest CPU model. Needs root (libvirtd, mount
# namespaces). scripts/test.sh runs it (as root) after the Rust tests.
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

. scripts/lib/isolated-libvirtd.sh

# QEMU's migration stream goes to this address (libvirt refuses a loopback one).
HOST_IP=${HOST_IP:-$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)}
[ -n "$HOST_IP" ] || { echo "no non-loopback IPv4 address for the migration stream (set HOST_IP)" >&2; exit 2; }
PA=$(free_port); PB=$(free_port)
start_libvirtd a "$PA" 49200
start_libvirtd b "$PB" 49300
URI_A="qemu+tcp://127.0.0.1:$PA/system"
URI_B="qemu+tcp://127.0.0.1:$PB/system"
t=$SECONDS
wait_libvirtd "$URI_A" a
wait_libvirtd "$URI_B" b
echo "two libvirtd ready in $((SECONDS - t)) s: $URI_A, $URI_B"
if virsh -c "$URI_A" domcapabilities --virttype kvm >/dev/null 2>&1; then echo "KVM usable"; else echo "KVM not usable: QEMU TCG"; fi

if [ -z "${NO_BUILD:-}" ]; then cargo build -q -p lqx-server -p lqx-cli; fi
BIN=$PWD/target/debug/lqx-server
LQX=$PWD/target/debug/lqx
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
PW=smoke-admin-password-0123
# host-model guests break under some nested KVM set-ups (MSRs the outer hypervisor refuses);
# a named model also is what a cluster of unlike hosts uses.
LQX_BOOTSTRAP_ADMIN_PASSWORD=$PW "$BIN" --dev --listen 127.0.0.1:$PORT --data-dir "$WORK/cp" \
  --guest-cpu-model "${GUEST_CPU:-kvm64}" \
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
[ "$(virsh -c "$URI_A" domstate "$DOM")" = running ]
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
if virsh -c "$URI_A" list --all --name | grep -x "$DOM" >/dev/null; then echo "FAIL: A still has $DOM"; exit 1; fi
QPID=$(pgrep -f "guest=$DOM" | head -1)
QCMD=$(tr '\0' ' ' <"/proc/$QPID/cmdline")
if [[ "$QCMD" != *" -incoming "* ]]; then
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

# --- DRS: the same through the engine -------------------------------------------------------
# host-b goes into maintenance (VMs left in place): its running VM must move, and may only
# move live. A manual apply first (timed), then a round in full automation back.
check_moved() { # $1: URI of the target, $2: URI of the source
  local st
  st=$(virsh -c "$1" domstate "$DOM" --reason)
  [ "$st" = "running (migrated)" ] || { echo "FAIL: expected running (migrated), got $st"; exit 1; }
  if virsh -c "$2" list --all --name | grep -x "$DOM" >/dev/null; then echo "FAIL: source still has $DOM"; exit 1; fi
}
"$LQX" drs configure --enabled true --automation manual --interval 1h >/dev/null
"$LQX" node maintenance enter host-b --no-evacuate >/dev/null
"$LQX" drs run >/dev/null
REC=$("$LQX" drs list -o json | python3 -c "import json,sys; r=[x for x in json.load(sys.stdin) if x['vm']=='smoke']; print(r[0]['id'])")
t0=$(date +%s.%N)
"$LQX" drs apply "$REC" --wait >/dev/null
t1=$(date +%s.%N)
check_moved "$URI_A" "$URI_B"
echo "lqx drs apply --wait -> running on host-a (migrated) in $(python3 -c "print(round($t1-$t0,2))") s"
virsh -c "$URI_A" domjobinfo "$DOM" --completed | grep -E "Time elapsed:|Total downtime:" || true
"$LQX" node maintenance exit host-b >/dev/null
"$LQX" node maintenance enter host-a --no-evacuate >/dev/null
"$LQX" drs configure --automation full >/dev/null
t0=$(date +%s.%N)
"$LQX" drs run >/dev/null
for _ in $(seq 300); do
  [ "$("$LQX" vm get smoke -o json | json "['node']")" = host-b ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
check_moved "$URI_B" "$URI_A"
echo "DRS in full automation moved it live to host-b in $(python3 -c "print(round($t1-$t0,2))") s: $(virsh -c "$URI_B" domstate "$DOM" --reason)"
"$LQX" drs status | tail -n +1 | head -20
echo "live migration smoke test passed in $(( $(date +%s) - start_time )) s"
