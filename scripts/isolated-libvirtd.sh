#!/usr/bin/env bash
# Starts a private libvirtd (QEMU driver) for tests, isolated from the host's own: a mount
# namespace with its own /run, /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt (all under DIR), its socket at DIR/sock/libvirt-sock. Needs root.
#
#   scripts/isolated-libvirtd.sh DIR      # prints the URI once libvirtd answers, then returns
#   kill "$(cat DIR/libvirtd.pid)"        # stops it (its guests die with it: DIR/run is tmpfs)
#
# Guests run on QEMU's TCG: /dev/kvm is hidden inside the namespace (nested KVM is often
# broken in CI machines); LQX_LIBVIRTD_KVM=1 keeps it.
#
# Clients connect with qemu:///system?socket=DIR/sock/libvirt-sock. The first connection to
# a fresh libvirtd probes QEMU's capabilities (can take > 30 s): this waits for it.
set -euo pipefail
dir=$(realpath -m "${1:?usage: isolated-libvirtd.sh DIR}")
wait_secs=${LQX_LIBVIRTD_WAIT:-120}
mkdir -p "$dir"/{run,lib,cache,log,etc,sock}
cp -r /etc/libvirt/. "$dir/etc/"
cat > "$dir/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$dir/sock"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$dir/libvirtd.log"
# The agent keeps several calls in flight on its one connection (heartbeat reads, reconcile,
# migrations, reads it gave up on); the default of 5 per client stalls it.
max_client_requests = 64
max_workers = 40
CONF
cat > "$dir/etc/qemu.conf" <<CONF
stdio_handler = "file"
security_driver = "none"
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
# No private /dev per guest: libvirt would copy the bind mount over /dev/kvm (below) into it.
namespaces = []
CONF
# The guest logs go to DIR/log/qemu; libvirtd's own runtime state to DIR/run (tmpfs here).
unshare --mount --propagation private -- sh -c '
  set -e
  d="$1"
  mount -t tmpfs tmpfs /run
  # An empty read-only regular file, not /dev/null: libvirt (as root) deems /dev/kvm usable
  # when it is writable, and then throws away its QEMU capabilities (probed without KVM) at
  # every lookup and re-probes QEMU for seconds on each define, start or capabilities call.
  if [ "$2" != 1 ] && [ -e /dev/kvm ]; then
    : > "$d/no-kvm"
    mount --bind "$d/no-kvm" /dev/kvm
    mount -o remount,bind,ro /dev/kvm
  fi
  mount --bind "$d/etc" /etc/libvirt
  for p in lib cache log; do
    mkdir -p "/var/$p/libvirt" 2>/dev/null || true
    mount --bind "$d/$p" "/var/$p/libvirt"
  done
  exec libvirtd --config "$d/etc/libvirtd.conf" --pid-file "$d/libvirtd.pid"
' sh "$dir" "${LQX_LIBVIRTD_KVM:-0}" >"$dir/stdout.log" 2>&1 &
uri="qemu:///system?socket=$dir/sock/libvirt-sock"
for _ in $(seq 1 $((wait_secs * 2))); do
  if virsh -c "$uri" capabilities >/dev/null 2>&1; then
    echo "$uri"
    exit 0
  fi
  sleep 0.5
done
echo "libvirtd in $dir did not answer within ${wait_secs}s; see $dir/libvirtd.log and $dir/stdout.log" >&2
exit 1
