"""The machine image recipe stays complete: the Dockerfile copies the whole folder, so every module
`python -m dapp` loads is in the image; the folder holds machine code only; and the backend imports nothing but
the standard library and the packages pinned in dapp/requirements.txt."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

DAPP = Path(__file__).resolve().parents[1] / "dapp"

# What the backend's own modules may import besides the standard library (pinned in dapp/requirements.txt).
MACHINE_PACKAGES = {"requests", "eth_abi", "eth_utils"}


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
    for name in ("requests", "eth-abi", "eth-utils", "eth-hash[pycryptodome]"):
        assert re.search(rf"^{re.escape(name)}==", pinned, re.M), f"{name} is not pinned for the machine"


def test_the_backend_is_python_3_10_syntax():
    """The machine's Python is 3.10 (cartesi/python:3.10-slim-jammy); the host and the riscv64 replay run newer
    ones, so syntax of 3.11+ (except*, PEP 695 generics, …) would pass every other test and fail in the machine."""
    for path in sorted(DAPP.glob("*.py")):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))
