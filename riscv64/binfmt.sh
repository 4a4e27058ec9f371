#!/usr/bin/env bash
# Register QEMU's riscv64 emulator with the kernel's binfmt_misc (as root), so riscv64 programs run
# directly and inside a chroot. Debian's qemu-user-static ships the line (flags OCF: F opens the
# interpreter at registration, so a chroot without QEMU inside still runs riscv64 programs).
set -euo pipefail
CONF=/usr/lib/binfmt.d/qemu-riscv64.conf
BINFMT=/proc/sys/fs/binfmt_misc
[ -f "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT" || {
  echo "riscv64/binfmt.sh: cannot mount binfmt_misc here: riscv64 programs cannot run in a chroot" >&2; exit 2; }
[ -f "$BINFMT/qemu-riscv64" ] && exit 0
[ -f "$CONF" ] || { echo "riscv64/binfmt.sh: $CONF missing (apt-get install qemu-user-static)" >&2; exit 2; }
grep -v '^#' "$CONF" > "$BINFMT/register"
echo "== riscv64: QEMU registered with binfmt_misc ($(head -1 "$BINFMT/qemu-riscv64"))"
