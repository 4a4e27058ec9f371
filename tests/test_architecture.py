"""The layers of the code stay as docs/ARCHITECTURE.md draws them: import-linter's contracts in
pyproject.toml (layers, the machine's self-contained backend, no import circles) all hold."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "3 kept, 0 broken" in lint.stdout
