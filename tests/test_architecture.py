"""The layers of the code stay as docs/ARCHITECTURE.md draws them: import-linter's contracts in
pyproject.toml (layers, the machine's self-contained backend, no import circles) all hold."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_import_linter_contracts_are_kept():
    lint = subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "3 kept, 0 broken" in lint.stdout


PACKAGES = ["common", "contracts-config", "dapp", "rollups_node", "rollups_client", "flower_sim",
            "frontend-console", "topology", "fedrollup", "benchmarks"]


def function_local_imports() -> list[tuple[str, int, str]]:
    """(file, line, text) of every import statement inside a function of the project's packages."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for function in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for node in ast.walk(function):
                        if isinstance(node, (ast.Import, ast.ImportFrom)):
                            found.append((str(path.relative_to(REPO)), node.lineno, lines[node.lineno - 1]))
    return found


def test_function_local_imports_say_why():
    """Imports sit at the top of a module; the exceptions (heavy or optional dependencies such as TensorFlow
    or Mininet, deferred so `--help` stays instant or a machine without them still works) say so on the line."""
    silent = [f"{path}:{line}: {text.strip()}" for path, line, text in function_local_imports() if "#" not in text]
    assert not silent, "function-local imports without their reason:\n" + "\n".join(silent)
