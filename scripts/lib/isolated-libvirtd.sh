# Sourced by the smoke scripts: a libvirtd of its own, never the system's sockets or
# directories. `start_libvirtd NAME PORT MIGRATION_PORT` runs one in a private mount namespace
# (its /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt
# are directories under $WORK/NAME), with its own host UUID, listening on 127.0.0.1:PORT
# without authentication; `wait_libvirtd URI` waits until it answers and has probed QEMU (the
# first probe can take well over 30 s on a busy machine). Needs $WORK, $PIDS and, for
# migrations, $HOST_IP (a non-loopback address of this machine). PORT and MIGRATION_PORT may be
# empty (no TCP listener; clients use the socket at $WORK/NAME/sock/libvirt-sock). NO_KVM=1
# hides /dev/kvm from it (guests on QEMU TCG). scripts/isolated-libvirtd.sh is its CLI.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One libvirtd in its own mount namespace. $1: name, $2: TCP port, $3: first QEMU migration port.
start_libvirtd() {
  local name=$1 port=${2:-} mport=${3:-} d=$WORK/$1 mig="" tcp="" ports="" listen="" nsdev=""
  # libvirt refuses loopback migration addresses: set only for migrations between instances.
  if [ -n "${HOST_IP:-}" ]; then
    mig="migration_address = \"$HOST_IP\"
migration_host = \"$HOST_IP\""
  fi
  if [ -n "$port" ]; then
    listen=--listen
    tcp="listen_tls = 0
listen_tcp = 1
listen_addr = \"127.0.0.1\"
tcp_port = \"$port\"
auth_tcp = \"none\""
  fi
  if [ -n "$mport" ]; then
    ports="migration_port_min = $mport
migration_port_max = $((mport + 15))"
  fi
  if [ "${NO_KVM:-0}" = 1 ]; then
    # No private /dev per guest: libvirt cannot copy the bind mount over /dev/kvm into it.
    nsdev="namespaces = []"
  fi
  mkdir -p "$d"/{run,lib/images,cache,log,etc,sock} /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
  cp -a /etc/libvirt/. "$d/etc/"
  # A warm QEMU capabilities cache saves libvirtd a minute of probing, when there is one.
  # (COLD=1: no copy, to measure a fresh machine.)
  if [ -z "${COLD:-}" ] && [ -d /var/cache/libvirt/qemu/capabilities ]; then
    mkdir -p "$d/cache/qemu" && cp -a /var/cache/libvirt/qemu/capabilities "$d/cache/qemu/" 2>/dev/null || true
  fi
  cat >"$d/etc/libvirtd.conf" <<EOF
$tcp
unix_sock_dir = "$d/sock"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
# The agent keeps several calls in flight on its one connection (heartbeat reads, reconcile,
# migrations, reads it gave up on); the default of 5 per client stalls it.
max_client_requests = 64
max_workers = 40
host_uuid = "$(python3 -c 'import uuid; print(uuid.uuid4())')"
EOF
  cat >"$d/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
$mig
$ports
$nsdev
EOF
  unshare --mount --propagation private -- bash -c "
    set -e
    # An empty read-only regular file, not /dev/null: libvirt (as root) deems /dev/kvm usable
    # when it is writable, and then throws away its QEMU capabilities (probed without KVM) at
    # every lookup and re-probes QEMU for seconds on each define, start or capabilities call.
    if [ '${NO_KVM:-0}' = 1 ] && [ -e /dev/kvm ]; then
      : > '$d/no-kvm'
      mount --bind '$d/no-kvm' /dev/kvm
      mount -o remount,bind,ro /dev/kvm
    fi
    mount --bind '$d/run' /run/libvirt
    mount --bind '$d/lib' /var/lib/libvirt
    mount --bind '$d/cache' /var/cache/libvirt
    mount --bind '$d/log' /var/log/libvirt
    mount --bind '$d/etc' /etc/libvirt
    exec libvirtd $listen --pid-file '$d/libvirtd.pid'
  " >"$d/libvirtd.log" 2>&1 &
  PIDS+=($!)
  echo $! >"$d/unshare.pid"
}

wait_libvirtd() { # $1: URI, $2: name. Ready once QEMU capabilities are probed (> 30 s on a busy machine).
  local deadline=$((SECONDS + 240)) d=$WORK/$2
  until virsh -c "$1" domcapabilities --virttype qemu >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$d/unshare.pid")" 2>/dev/null; then
      echo "libvirtd $2 exited:" >&2
      tail -5 "$d/libvirtd.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then echo "libvirtd at $1 not ready after 240 s" >&2; return 1; fi
    sleep 1
  done
}

