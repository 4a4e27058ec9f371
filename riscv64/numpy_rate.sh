#!/usr/bin/env bash
# How much slower compute-bound integer numpy is on riscv64 under QEMU than on this host: numpy's import time
# and a fixed int64 matmul (500x800 @ 800x64: a batch of 500 images through the demo CNN's dense layer,
# 25.6 M multiply-adds, no BLAS), best of 5, on the host's Python and in the root file system of riscv64/rootfs.sh.
#
#   riscv64/numpy_rate.sh ROOTFS     (as root)
set -euo pipefail

ROOTFS=$(realpath -m "${1:?usage: riscv64/numpy_rate.sh ROOTFS}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$ROOTFS/.fedrollup-ready" ] || { echo "riscv64/numpy_rate.sh: no root file system at $ROOTFS (make riscv-rootfs)" >&2; exit 2; }
"$REPO/riscv64/binfmt.sh"

PROGRAM='
import platform, resource, time
start = time.perf_counter()
import numpy as np
imported = time.perf_counter() - start
a = (np.arange(500 * 800, dtype=np.int64) % np.int64(256)).reshape(500, 800)
b = (np.arange(800 * 64, dtype=np.int64) % np.int64(255) - np.int64(127)).reshape(800, 64)
times = []
for _ in range(5):
    start = time.perf_counter()
    c = a @ b
    times.append(time.perf_counter() - start)
assert c.dtype == np.int64
best = min(times)
print(f"{platform.machine():8} numpy {np.__version__:7} import {imported * 1e3:6.0f} ms  matmul {best * 1e3:7.1f} ms "
      f"({500 * 800 * 64 / best / 1e9:.3f} GMAC/s)  max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")
print(f"RESULT {best}")
'
host=$("$REPO/.venv/bin/python" -c "$PROGRAM")
riscv64=$(chroot "$ROOTFS" /usr/bin/env -i PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c "$PROGRAM")
echo "$host" | grep -v ^RESULT
echo "$riscv64" | grep -v ^RESULT
python3 -c "import sys; h, r = (float(x.split()[1]) for x in sys.argv[1:]); print(f'QEMU/host (matmul): {r / h:.1f}x')" \
  "$(echo "$host" | grep ^RESULT)" "$(echo "$riscv64" | grep ^RESULT)"
