#!/usr/bin/env bash
# Real QEMU smoke test: a 64 MiB diskless VM through lqx end to end, on real libvirt + QEMU.
#
#   sudo bash scripts/qemu-smoke.sh
#
# Installs qemu-system-x86 and libvirt-daemon-system (Debian), starts a libvirtd of its own by
# hand (no systemd needed, e.g. in a container; in a private mount namespace, never the
# system's sockets: scripts/lib/isolated-libvirtd.sh) and waits until it has probed QEMU,
# builds lqx-server, starts a control plane (`--dev`) and a real `lqx-server agent` on it,
# then over Connect JSON: creates and starts the VM on the agent's node, checks with virsh that
# QEMU runs it, stops it, and deletes it (checking virsh no longer lists it). The driver runs
# KVM guests when libvirt reports it can, else TCG (it logs which). Needs root and network
# access for the packages, which is why it is not part of CI. GUEST_CPU (default kvm64) is the
# guest CPU model: host-model guests fail to start under some nested KVM set-ups.
set -euo pipefail
cd "$(dirname "$0")/.."
start_time=$(date +%s)

if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 2; fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v qemu-system-x86_64 >/dev/null || ! dpkg -s libvirt-daemon-system >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-system-x86 libvirt-daemon-system libvirt-clients >/dev/null
fi
bash .ci/install-libvirt.sh

WORK=$(mktemp -d /tmp/lqx-smoke.XXXXXX)
PIDS=()
. scripts/lib/isolated-libvirtd.sh
LIBVIRT_PORT=$(free_port)
LV="qemu+tcp://127.0.0.1:$LIBVIRT_PORT/system"
cleanup() {
  if [ -n "${VMNAME:-}" ]; then
    virsh -c "$LV" destroy "$VMNAME" >/dev/null 2>&1 || true
    virsh -c "$LV" undefine "$VMNAME" >/dev/null 2>&1 || true
  fi
  # Agent, server, then the libvirt daemons started here (reverse start order).
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

t=$SECONDS
start_libvirtd libvirt "$LIBVIRT_PORT" 49400
wait_libvirtd "$LV" libvirt
echo "libvirtd ready in $((SECONDS - t)) s"
virsh -c "$LV" version
if virsh -c "$LV" domcapabilities --virttype kvm >/dev/null 2>&1; then echo "KVM usable"; else echo "KVM not usable: QEMU runs on TCG"; fi

if [ -z "${NO_BUILD:-}" ]; then cargo build -q -p lqx-server; fi
BIN=target/debug/lqx-server
PORT=$((20000 + RANDOM % 20000))
URL=http://127.0.0.1:$PORT
PW=smoke-admin-password-0123

LQX_BOOTSTRAP_ADMIN_PASSWORD=$PW "$BIN" --dev --listen 127.0.0.1:$PORT --data-dir "$WORK/cp" \
  --guest-cpu-model "${GUEST_CPU:-kvm64}" \
  >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.2; done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }
call() { # call METHOD JSON -> body on stdout, fails on HTTP errors
  curl -sS --fail-with-body -X POST "$URL/$1" -H "Content-Type: application/json" \
    ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -d "$2"
}
TOKEN=$(call limiquantix.auth.v1.AuthService/Login "{\"username\":\"admin\",\"password\":\"$PW\"}" | json "['accessToken']" || true)
JOIN=$(call limiquantix.compute.v1.NodeService/CreateJoinToken '{"nodeName":"qemu-1"}' | json "['token']")

LQX_JOIN_TOKEN=$JOIN "$BIN" agent --control-plane "$URL" --libvirt "$LV" \
  --data-dir "$WORK/agent" --name qemu-1 >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do call limiquantix.compute.v1.NodeService/GetNode '{"id":"qemu-1"}' >/dev/null 2>&1 && break; sleep 0.2; done

t0=$(date +%s.%N)
VM=$(call limiquantix.compute.v1.VMService/CreateVM \
  '{"name":"smoke","node":"qemu-1","start":true,"spec":{"cpuCores":1,"memoryMib":64}}')
t1=$(date +%s.%N)
ID=$(echo "$VM" | json "['id']")
STATE=$(echo "$VM" | json "['status']['state']")
VMNAME=lqx-$ID
echo "created and started in $(python3 -c "print(round($t1-$t0,2))") s: $STATE"
[ "$STATE" = VM_STATE_RUNNING ] || { echo "not running: $VM"; exit 1; }
[ "$(virsh -c "$LV" domstate "$VMNAME")" = running ] || { echo "not running in libvirt"; exit 1; }
echo "virsh: $VMNAME is running"

call limiquantix.compute.v1.VMService/StopVM "{\"id\":\"$ID\",\"force\":true}" >/dev/null
[ "$(virsh -c "$LV" domstate "$VMNAME")" = "shut off" ] || { echo "not shut off in libvirt"; exit 1; }
echo "virsh: $VMNAME is shut off"
call limiquantix.compute.v1.VMService/DeleteVM "{\"id\":\"$ID\"}" >/dev/null
if virsh -c "$LV" list --all --name | grep -x "$VMNAME" >/dev/null; then echo "still defined"; exit 1; fi
VMNAME=
echo "virsh: domain gone"

echo "qemu smoke test passed in $(( $(date +%s) - start_time )) s"
