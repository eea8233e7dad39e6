#!/usr/bin/env bash
# Live-migration benchmark (docs/BENCHMARKS.md): downtime and total time, from libvirt's job
# statistics, of a 256 MiB guest moved between two libvirtd instances on this machine with
# the flags lqx's driver uses (live, peer to peer, persist on the target, undefine on the
# source, abort on error):
#   idle   - no OS (the firmware waits for a boot device), as lqx's diskless smoke guest;
#   dirty  - a 12-instruction multiboot kernel that writes one word to every page of
#            16-240 MiB in a tight loop (about 57,000 dirty pages per pass, continuously);
#            moved with auto-converge (lqx vm migrate --auto-converge), since without it it
#            never converges.
#
#   sudo bash scripts/bench-live-migration.sh            # RUNS=5 moves of each
#
# Needs root, libvirtd, qemu-system-x86 and binutils (as, ld). Uses KVM when libvirt can,
# else TCG (say which in the results).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 2; fi
RUNS=${RUNS:-5}
MEMORY_MIB=${MEMORY_MIB:-256}
GUEST_CPU=${GUEST_CPU:-kvm64}
WORK=$(mktemp -d /tmp/lqx-lmbench.XXXXXX)
PIDS=()
cleanup() {
  pkill -f "guest=lqxbench-" 2>/dev/null || true
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/lib/isolated-libvirtd.sh
HOST_IP=${HOST_IP:-$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)}
PA=$(free_port); PB=$(free_port)
start_libvirtd a "$PA" 49500
start_libvirtd b "$PB" 49600
A="qemu+tcp://127.0.0.1:$PA/system"
B="qemu+tcp://127.0.0.1:$PB/system"
wait_libvirtd "$A" a
wait_libvirtd "$B" b
TYPE=qemu
if virsh -c "$A" domcapabilities --virttype kvm >/dev/null 2>&1; then TYPE=kvm; fi
echo "hypervisor: $TYPE, guest CPU $GUEST_CPU, $MEMORY_MIB MiB, $(nproc) host CPUs"

# The dirtying kernel (multiboot, loaded by QEMU itself: no disk, so nothing but memory moves).
cat >"$WORK/dirty.S" <<'EOF'
        .code32
        .text
        .globl _start
        .align 4
        .long 0x1BADB002, 0, -0x1BADB002
_start: cli
        xor %eax, %eax
1:      mov $0x01000000, %edi
2:      mov %eax, (%edi)
        add $4096, %edi
        cmp $0x0F000000, %edi
        jb 2b
        inc %eax
        jmp 1b
EOF
as --32 -o "$WORK/dirty.o" "$WORK/dirty.S"
ld -m elf_i386 -Ttext 0x100000 -e _start -o "$WORK/dirty.elf" "$WORK/dirty.o"

domain_xml() { # $1 name, $2 kernel or empty
  cat <<EOF
<domain type='$TYPE'>
  <name>$1</name>
  <memory unit='MiB'>$MEMORY_MIB</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>${2:+<kernel>$2</kernel>}</os>
  <cpu mode='custom' match='exact' check='partial'><model fallback='forbid'>$GUEST_CPU</model></cpu>
  <devices><serial type='pty'/><console type='pty'/></devices>
</domain>
EOF
}

field() { awk -F: -v k="$1" '$1 == k {gsub(/^ +/, "", $2); print $2}'; }

bench() { # $1 case, $2 kernel, $3 extra virsh flags
  local name="lqxbench-$1" from=$A to=$B
  domain_xml "$name" "$2" >"$WORK/$name.xml"
  virsh -q -c "$A" define "$WORK/$name.xml" >/dev/null
  virsh -q -c "$A" start "$name" >/dev/null
  sleep 10 # booted (the dirtying loop running) before the first move
  for i in $(seq "$RUNS"); do
    # shellcheck disable=SC2086
    virsh -c "$from" migrate --live --p2p --persistent --undefinesource --abort-on-error $3 \
      "$name" "$to" >/dev/null
    local stats
    stats=$(virsh -c "$to" domjobinfo "$name" --completed)
    printf '%-6s run %d: total %6s ms, downtime %5s ms, memory processed %s, iterations %s, state %s\n' \
      "$1" "$i" "$(echo "$stats" | field 'Time elapsed' | cut -d' ' -f1)" \
      "$(echo "$stats" | field 'Total downtime' | cut -d' ' -f1)" \
      "$(echo "$stats" | field 'Memory processed')" "$(echo "$stats" | field 'Iteration')" \
      "$(virsh -c "$to" domstate "$name" --reason)"
    local t=$from; from=$to; to=$t
  done
  virsh -q -c "$from" destroy "$name" >/dev/null
  virsh -q -c "$from" undefine "$name" >/dev/null
}

bench idle "" ""
bench dirty "$WORK/dirty.elf" "--auto-converge"
