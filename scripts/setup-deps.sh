#!/usr/bin/env bash
# Installs the system packages lqx needs to build and test on Debian (idempotent):
# libvirt's C library and headers (the libvirt driver; its test:/// driver needs no daemon)
# and PostgreSQL (for the store tests on both engines).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-libvirt.sh
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
# gnome-keyring + dbus: the CLI's Secret Service round trip (tests/e2e/cli.rs; ~20 s to install).
command -v gnome-keyring-daemon >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnome-keyring dbus libsecret-tools >/dev/null; }
# libvirtd + QEMU (TCG) + virsh: the fence process's end-to-end test runs a private libvirtd
# (scripts/isolated-libvirtd.sh; tests/e2e/fence.rs).
if ! command -v libvirtd >/dev/null || ! command -v qemu-system-x86_64 >/dev/null || ! command -v virsh >/dev/null; then
  SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 libvirt-daemon-system libvirt-clients >/dev/null
fi
