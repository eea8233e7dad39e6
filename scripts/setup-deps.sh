#!/usr/bin/env bash
# Installs the system packages lqx needs to build and test on Debian (idempotent; as root,
# or as a user with sudo):
# libvirt's C library and headers (the libvirt driver; its test:/// driver needs no daemon)
# and PostgreSQL (for the store tests on both engines). `--server-only`: only what building
# and running lqx-server needs (libvirt), as scripts/dev.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
bash .ci/install-libvirt.sh
if [ "${1:-}" = --server-only ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
# gnome-keyring + dbus: the CLI's Secret Service round trip (tests/e2e/cli.rs; ~20 s to install).
if ! command -v gnome-keyring-daemon >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnome-keyring dbus libsecret-tools >/dev/null
fi
# libvirtd + QEMU (TCG) + virsh: the fence process's end-to-end test runs a private libvirtd
# (scripts/isolated-libvirtd.sh; tests/e2e/fence.rs).
if ! command -v libvirtd >/dev/null || ! command -v qemu-system-x86_64 >/dev/null || ! command -v virsh >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 libvirt-daemon-system libvirt-clients >/dev/null
fi
# cargo-deny for `cargo deny check` in scripts/test.sh, pinned. Built from crates.io with its
# lock file (a few minutes once; cargo keeps it in ~/.cargo/bin): prebuilt release archives
# live on a host our CI machines cannot reach.
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
  cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
fi
# BMC emulators for the host power tests (lqx-core/tests/power_bmc.rs): ipmitool (Debian) and,
# from PyPI in a venv at a fixed path, sushy-tools (Redfish) and virtualbmc (IPMI over a
# libvirt domain). ~30 s the first time; nothing when present.
if ! command -v ipmitool >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ipmitool >/dev/null
fi
BMC_VENV="${LQX_BMC_VENV:-/opt/lqx-bmc}"
if [ ! -x "$BMC_VENV/bin/sushy-emulator" ] || [ ! -x "$BMC_VENV/bin/vbmcd" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  # virtualbmc builds libvirt-python from source: Python's headers, a C compiler, pkg-config.
  if ! python3 -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null \
     || ! command -v cc >/dev/null || ! command -v pkg-config >/dev/null; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-dev gcc pkg-config >/dev/null
  fi
  $SUDO python3 -m venv "$BMC_VENV"
  $SUDO "$BMC_VENV/bin/pip" install -q --disable-pip-version-check sushy-tools virtualbmc
fi
# Node.js + panva's oidc-provider: the real OpenID provider of the SSO tests
# (tests/oidc/provider.mjs; tests/e2e/sso.rs). Pinned by tests/oidc/package-lock.json (~3 s).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup-deps: the SSO tests' OpenID provider needs Node.js >= 20 (found $(node --version))" >&2
  exit 1
fi
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
