"""The machine image recipe stays complete: the Dockerfile copies the whole folder, so every module
`python -m dapp` loads is in the image; the folder holds machine code only; and the backend imports nothing but
the standard library, the packages pinned in dapp/requirements.txt and numpy, pinned per target from apt."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAPP = REPO / "dapp"

# The one machine package that comes from apt, not pip: PyPI has no riscv64 numpy wheel (issue-13 design §2.4) and
# building it under emulation takes ~40 min, so each target installs its distribution's build, pinned in the file
# that defines the target (below: the file, the pin as written there, the upstream version). The versions differ
# (and from the host's pip numpy 2.4); the backend tolerates that because it computes integers only, in int64, and
# tests/test_node_replay_run.py compares a digest of such a computation across architectures.
APT_PACKAGE = "numpy"
MACHINE_NUMPY = ("dapp/Dockerfile", "python3-numpy=1:1.21.5-1ubuntu22.04.1", "1.21.5")  # Ubuntu 22.04, jammy-updates
RISCV64_ROOTFS_NUMPY = ("riscv64/trixie-riscv64.lock", "python3-numpy 1:2.2.4+ds-1", "2.2.4")  # Debian 13 trixie

# What the backend's own modules may import besides the standard library (pinned in dapp/requirements.txt, or apt's).
MACHINE_PACKAGES = {"requests", "eth_abi", "eth_utils", "eth_keys", APT_PACKAGE}


def modules_loaded_by_backend() -> set[str]:
    code = ("import sys, dapp.__main__; from dapp.schema import decode_input; from eth_utils import keccak; "
            "keccak(b''); import json; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=DAPP.parent).stdout
    return set(json.loads(out))


def copied_modules() -> set[str]:
    """The files the Dockerfile's `COPY <pattern> ./dapp/` takes from this folder (the build context)."""
    pattern = re.search(r"^COPY (\S+) \./dapp/$", (DAPP / "Dockerfile").read_text(), re.M).group(1)
    return {path.name for path in DAPP.glob(pattern) if path.is_file()}


def test_every_backend_module_is_copied_into_the_image():
    copied = copied_modules()
    needed = {m.split(".")[1] + ".py" for m in modules_loaded_by_backend() if m.startswith("dapp.")}
    assert needed <= copied, f"{sorted(needed - copied)} are not copied by the Dockerfile"
    assert "cli.py" not in copied


def test_the_machine_folder_holds_machine_code_only():
    """The image copies the whole folder, so no host-only module may live in it."""
    for name in sorted(copied_modules()):
        foreign = imports_of(DAPP / name) - set(sys.stdlib_module_names) - MACHINE_PACKAGES - {"dapp"}
        assert not foreign, f"dapp/{name} imports host-only {sorted(foreign)}: move it out of dapp/"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return {n.split(".")[0] for n in names}


def test_backend_imports_only_stdlib_and_machine_packages():
    pinned = (DAPP / "requirements.txt").read_text()
    for module in modules_loaded_by_backend():
        if module.startswith("dapp."):
            path = DAPP / (module.split(".")[1] + ".py")
            foreign = imports_of(path) - set(sys.stdlib_module_names) - MACHINE_PACKAGES - {"dapp"}
            assert not foreign, f"{path.name} imports host-only {sorted(foreign)}"
    for name in ("requests", "eth-abi", "eth-utils", "eth-hash[pycryptodome]", "eth-keys"):
        assert re.search(rf"^{re.escape(name)}==", pinned, re.M), f"{name} is not pinned for the machine"


def test_the_backend_is_python_3_10_syntax():
    """The machine's Python is 3.10 (cartesi/python:3.10-slim-jammy); the host and the riscv64 replay run newer
    ones, so syntax of 3.11+ (except*, PEP 695 generics, …) would pass every other test and fail in the machine."""
    for path in sorted(DAPP.glob("*.py")):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


def test_numpy_is_pinned_from_apt_on_every_target():
    for path, pin, upstream in (MACHINE_NUMPY, RISCV64_ROOTFS_NUMPY):
        assert re.search(rf"^\s*{re.escape(pin)}( \\)?$", (REPO / path).read_text(), re.M), f"{path} does not pin {pin}"
        assert re.search(rf":{re.escape(upstream)}[+-]", pin), f"{pin} is not numpy {upstream}"
    include = re.search(r"^INCLUDE=(\S+)$", (REPO / "riscv64" / "rootfs.sh").read_text(), re.M).group(1).split(",")
    assert "python3-numpy" in include, "riscv64/rootfs.sh does not install python3-numpy"
    pinned = (DAPP / "requirements.txt").read_text()
    assert not re.search(rf"^{APT_PACKAGE}\b", pinned, re.M | re.I), "numpy from pip would compile under emulation"


def test_the_image_python_imports_apt_numpy_after_its_own_packages():
    """apt installs numpy for Ubuntu's python3.10 in /usr/lib/python3/dist-packages; the image runs its own 3.10
    from /usr/local. A .pth file appends that folder after the image's site-packages (so the pip pins win), and
    the build itself fails unless the interpreter of CMD imports the pinned upstream version."""
    dockerfile = (DAPP / "Dockerfile").read_text()
    assert re.search(r"^echo /usr/lib/python3/dist-packages \\\n\s+> .*sysconfig.*purelib.*\.pth\"$", dockerfile, re.M)
    assert f"python3 -c 'import numpy; assert numpy.__version__ == \"{MACHINE_NUMPY[2]}\"" in dockerfile
    assert "PYTHONPATH" not in dockerfile, "PYTHONPATH would put apt's folder before the pinned packages"
