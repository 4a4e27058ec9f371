"""One command line: every command module of `fedrollup.cli` is a `fedrollup` command, and no other package
has a command line of its own."""
from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import fedrollup.cli

REPO = Path(__file__).resolve().parent.parent


def test_every_command_module_is_listed_in_fedrollup_help():
    modules = [m.name for m in pkgutil.iter_modules(fedrollup.cli.__path__)]
    commands = {name for name in modules if hasattr(importlib.import_module(f"fedrollup.cli.{name}"), "add_parser")}
    out = subprocess.run([sys.executable, "-m", "fedrollup", "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    listed = set(re.findall(r"^    (\w+)\s", out, re.MULTILINE))
    assert listed == commands


def test_no_package_but_fedrollup_has_a_cli_module():
    packages = {p.parent for p in REPO.glob("*/__init__.py")}
    assert packages and not [p for p in packages if p.name != "fedrollup" and (p / "cli.py").exists()]
