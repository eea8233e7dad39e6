#!/usr/bin/env bash
# Installs what `--features libvirt` builds and tests need, on Debian: the libvirt C library
# with its pkg-config file (libvirt-dev, which brings libvirt0; libvirt0 contains the `test:///`
# driver the contract tests use, so no daemon is needed) and pkg-config. Idempotent: does
# nothing when they are there; runs `apt-get update` at most once. Non-interactive.
set -euo pipefail
if pkg-config --exists 'libvirt >= 6.0.0' 2>/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends libvirt-dev pkg-config >&2
pkg-config --exists 'libvirt >= 6.0.0'
echo "libvirt $(pkg-config --modversion libvirt) ready" >&2
