"""No import cycle between the engine and what it serves: submitting needs no Task class,
the engine's process side no task runner (the lazy imports are pinned in
tests/integration/test_import_rules.py)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def imported_modules(relative: str) -> set[str]:
    """Every module a source file imports, at any level (TYPE_CHECKING blocks too)."""
    tree = ast.parse((SRC / relative).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_submitting_does_not_import_the_task_class():
    assert "wfkit.tasks" not in imported_modules("wfkit/_engine/submit.py")


def test_the_process_side_of_the_engine_does_not_import_the_runners():
    assert not {m for m in imported_modules("wfkit/_engine/process.py") if "task_runners" in m}
