#!/usr/bin/env bash
# `make riscv-replay`: replay a whole `fedrollup demo` run's inputs through the backend running on riscv64
# (QEMU user emulation, the root file system of riscv64/rootfs.sh) as the node's machine, and compare every
# input's status, outputs (notices, vouchers) and reports byte for byte with what the host run stored.
#
#   riscv64/replay.sh ROOTFS [NODE_DB]    (as root; default NODE_DB: the newest demo run's, or a new demo)
set -euo pipefail

ROOTFS=$(realpath -m "${1:?usage: riscv64/replay.sh ROOTFS [NODE_DB]}")
DB=${2:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
FEDROLLUP=$REPO/.venv/bin/fedrollup
WORK=$(dirname "$ROOTFS")/replay
say() { echo "== riscv-replay: $*"; }

[ -f "$ROOTFS/.fedrollup-ready" ] || { echo "riscv64/replay.sh: no root file system at $ROOTFS (make riscv-rootfs)" >&2; exit 2; }
"$REPO/riscv64/binfmt.sh"

if [ -z "$DB" ]; then
  DB=$(ls -1t "$REPO"/runs/*-demo-*/chain/node.sqlite 2>/dev/null | head -1 || true)
  if [ -z "$DB" ]; then
    say "no demo run in runs/: running \`fedrollup demo\` first (about a minute)"
    (cd "$REPO" && "$FEDROLLUP" demo)
    DB=$(ls -1t "$REPO"/runs/*-demo-*/chain/node.sqlite | head -1)
  fi
fi
say "the recorded run: $DB"

# The backend as dapp/Dockerfile lays it out: every module of dapp/ in /opt/cartesi/dapp/dapp, run from
# /opt/cartesi/dapp as `python3 -m dapp`.
rm -rf "$ROOTFS/opt/cartesi/dapp"
mkdir -p "$ROOTFS/opt/cartesi/dapp/dapp"
cp "$REPO"/dapp/*.py "$ROOTFS/opt/cartesi/dapp/dapp/"
BACKEND="chroot $ROOTFS /usr/bin/env -C /opt/cartesi/dapp PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m dapp"
say "the machine: $(chroot "$ROOTFS" /usr/bin/python3 -c 'import platform, Crypto, cytoolz, eth_abi
print(f"{platform.machine()} Linux (QEMU user emulation), Python {platform.python_version()}, "
      f"eth-abi {eth_abi.__version__}, pycryptodome {Crypto.__version__}")')"

mkdir -p "$WORK"
say "1/2 the host backend (this machine's Python), for the reference time"
"$FEDROLLUP" chain replay --db "$DB" --work-dir "$WORK/host" | tee "$WORK/host.txt" \
  || say "the host backend itself does not reproduce this database (the riscv64 verdict below still counts)"
say "2/2 the riscv64 backend under QEMU: $BACKEND"
status=0
"$FEDROLLUP" chain replay --db "$DB" --work-dir "$WORK/riscv64" --backend-command "$BACKEND" \
  | tee "$WORK/riscv64.txt" || status=$?
say "verdict: $(tail -1 "$WORK/riscv64.txt")"
exit $status
