#!/usr/bin/env bash
# The backend's machine, as close as this host can build it: a Debian riscv64 root file system run under
# QEMU user emulation, with dapp/requirements.txt installed from PyPI as dapp/Dockerfile installs it.
#
#   riscv64/rootfs.sh ROOTFS     (as root; `make riscv-rootfs` calls it, `make riscv-replay` uses it)
#
# The real machine is `cartesi/python:3.10-slim-jammy` (Ubuntu 22.04, Python 3.10, glibc 2.35). Ubuntu's
# riscv64 ports mirror is out of reach here and Debian publishes riscv64 on its main mirror only from
# Debian 13 (trixie) on, so this is trixie: Python 3.13, glibc 2.41. Same ISA (rv64gc), same pinned Python
# packages; a different interpreter minor version and C library (docs/validators.md says what that means).
# Pinned as far as apt allows: the release (trixie), and the package versions recorded in
# riscv64/trixie-riscv64.lock (a drift after a Debian point release is printed, not fatal: the mirror
# serves only the current versions). The Python packages are exactly dapp/requirements.txt (checked), plus
# Debian's python3-numpy (PyPI has no riscv64 numpy wheel; the Dockerfile takes Ubuntu's, pinned there).
set -euo pipefail

ROOTFS=$(realpath -m "${1:?usage: riscv64/rootfs.sh ROOTFS}")
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
SUITE=trixie
MIRROR=http://deb.debian.org/debian
INCLUDE=python3,python3-pip,python3-dev,python3-numpy,gcc,libc6-dev,ca-certificates
LOCK=$HERE/$SUITE-riscv64.lock
STAMP=$ROOTFS/.fedrollup-ready

say() { echo "== riscv64: $*"; }
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

[ "$(id -u)" = 0 ] || { echo "riscv64/rootfs.sh: needs root (debootstrap, chroot, binfmt_misc)" >&2; exit 2; }

start=$(date +%s)
missing=""
for p in qemu-user-static mmdebstrap arch-test; do dpkg -s $p >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  say "installing$missing with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The kernel runs riscv64 programs through QEMU (binfmt_misc, flag F: the interpreter is opened now, so it
# also works inside the chroot). Debian's qemu-user-static ships the registration line.
"$HERE/binfmt.sh"

if [ ! -f "$ROOTFS/etc/os-release" ]; then
  say "building a Debian $SUITE riscv64 root file system in $ROOTFS (mmdebstrap under QEMU: several minutes)"
  t=$(date +%s)
  rm -rf "$ROOTFS"
  mkdir -p "$(dirname "$ROOTFS")"
  mmdebstrap --quiet --mode=root --variant=minbase --architectures=riscv64 --include="$INCLUDE" \
    "$SUITE" "$ROOTFS" "$MIRROR"
  say "root file system built in $(elapsed "$t")"
fi

# A root file system built before a package joined INCLUDE (python3-numpy did): add what is missing.
absent=""
for p in ${INCLUDE//,/ }; do
  chroot "$ROOTFS" dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || absent="$absent $p"
done
if [ -n "$absent" ]; then
  say "adding$absent to the existing root file system (apt under QEMU)"
  t=$(date +%s)
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends $absent && apt-get clean" >/dev/null
  say "added in $(elapsed "$t")"
fi

chroot "$ROOTFS" dpkg-query -W -f '${Package} ${Version}\n' | sort > "$ROOTFS/.dpkg-versions"
if [ -f "$LOCK" ]; then
  if ! diff -u "$LOCK" "$ROOTFS/.dpkg-versions" > "$ROOTFS/.dpkg-drift"; then
    say "WARNING: Debian package versions differ from $LOCK (a newer $SUITE point release):"
    grep '^[-+][^-+]' "$ROOTFS/.dpkg-drift" | head -20
  fi
fi

if [ ! -f "$STAMP" ] || [ "$REPO/dapp/requirements.txt" -nt "$STAMP" ]; then
  say "installing dapp/requirements.txt in the root file system (pip under QEMU; pycryptodome compiles)"
  t=$(date +%s)
  cp "$REPO/dapp/requirements.txt" "$ROOTFS/tmp/requirements.txt"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/tmp/host-ca.crt"  # the host's trust store, for PyPI
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root PIP_CERT=/tmp/host-ca.crt \
    PIP_DEFAULT_TIMEOUT=180 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    python3 -m pip install --quiet --no-cache-dir --break-system-packages --root-user-action=ignore \
    -r /tmp/requirements.txt
  say "Python packages installed in $(elapsed "$t")"
  # Exactly the pins, nothing more: compare pip's view of /usr/local with dapp/requirements.txt.
  site=$(cd "$ROOTFS" && ls -d usr/local/lib/python3*/dist-packages)
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/bin:/bin python3 -m pip list --path "/$site" --format=freeze \
    | tr 'A-Z_' 'a-z-' | sort > "$ROOTFS/.pip-freeze"
  grep -v '^#' "$REPO/dapp/requirements.txt" | sed 's/\[.*\]//' | tr 'A-Z_' 'a-z-' | sort > "$ROOTFS/.pip-pins"
  if ! diff -u "$ROOTFS/.pip-pins" "$ROOTFS/.pip-freeze"; then
    echo "riscv64/rootfs.sh: the installed Python packages are not exactly dapp/requirements.txt (above)" >&2
    exit 1
  fi
  touch "$STAMP"
fi
python_version=$(chroot "$ROOTFS" python3 -c 'import platform; print(platform.python_version(), platform.machine())')
say "ready: Debian $(cat "$ROOTFS/etc/debian_version"), Python $python_version, the pinned packages" \
    "($(elapsed "$start") this time)"
