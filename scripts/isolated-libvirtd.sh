#!/usr/bin/env bash
# Starts a private libvirtd (QEMU driver) for tests, isolated from the host's own (a mount
# namespace with its own /run/libvirt, /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt, all under DIR; scripts/lib/isolated-libvirtd.sh does it), its socket at
# DIR/sock/libvirt-sock. Needs root.
#
#   scripts/isolated-libvirtd.sh DIR      # prints the URI once libvirtd answers, then returns
#   kill "$(cat DIR/libvirtd.pid)"        # stops it
#
# Guests run on QEMU's TCG: /dev/kvm is hidden inside the namespace (nested KVM is often
# broken in CI machines); LQX_LIBVIRTD_KVM=1 keeps it.
#
# Clients connect with qemu:///system?socket=DIR/sock/libvirt-sock. The first connection to
# a fresh libvirtd probes QEMU's capabilities (can take > 30 s): this waits for it.
set -euo pipefail
dir=$(realpath -m "${1:?usage: isolated-libvirtd.sh DIR}")
WORK=$(dirname "$dir")
name=$(basename "$dir")
PIDS=()
. "$(dirname "${BASH_SOURCE[0]}")/lib/isolated-libvirtd.sh"
no_kvm=1
[ "${LQX_LIBVIRTD_KVM:-0}" = 1 ] && no_kvm=0
NO_KVM=$no_kvm start_libvirtd "$name" "" ""
uri="qemu:///system?socket=$dir/sock/libvirt-sock"
wait_libvirtd "$uri" "$name" >&2
echo "$uri"
