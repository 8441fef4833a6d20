"""The runner slice's import rules: no cycle between the engine and what it serves, and
the lazy imports pinned (each fails if made eager)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
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


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["HOME"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_sync_submissions_load_neither_asyncio_nor_multiprocessing(tmp_path):
    # asyncio (~30 ms) is imported by the first async task run (the event loop, awaiting a
    # future); multiprocessing (~12 ms) by the first process-pool run.
    code = (
        "import wfkit\n"
        "@wfkit.task\n"
        "def t(x: int) -> int: return x\n"
        "@wfkit.flow\n"
        "def f() -> list[int]: return t.map([1, 2]).result() + [t.submit(3).result()]\n"
        "assert f() == [1, 2, 3]\n"
    )
    loaded = _modules_after(code, tmp_path)
    assert "wfkit._engine.submit" in loaded and "wfkit._engine.process" in loaded
    assert "asyncio" not in loaded
    assert "multiprocessing" not in loaded
