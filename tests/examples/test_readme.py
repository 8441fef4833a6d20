"""README.md stays true: its set-up commands are the documented ones, and every ``python``
block in it runs (each in a fresh interpreter with its own ``WFKIT_HOME``) and prints what its
comments say.

A block whose first line names a file (``# my_runner.py``) is a file of an example project:
every block runs in a directory holding all of them, and the test files among them
(``test_*.py``) run with pytest there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
FILE_NAME = re.compile(r"# (\w+\.py)\n")
ALL_PYTHON = [code for lang, code in BLOCKS if lang == "python"]
FILES = {m.group(1): code for code in ALL_PYTHON if (m := FILE_NAME.match(code))}
PYTHON_BLOCKS = [code for code in ALL_PYTHON if not FILE_NAME.match(code)]
TEST_FILES = sorted(name for name in FILES if name.startswith("test_"))

INSTALL_AND_RUN = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" '
    "&& .venv/bin/python examples/quickstart.py"
)
TEST_COMMAND = ".venv/bin/python -m pytest"


def test_set_up_commands_are_the_documented_ones() -> None:
    shell = [code.strip() for lang, code in BLOCKS if lang in ("bash", "sh", "shell")]
    assert INSTALL_AND_RUN in shell, shell
    assert TEST_COMMAND in shell, shell


def test_ci_runs_what_the_readme_says() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv .venv" in ci
    assert '.venv/bin/pip install -e ".[test]"' in ci
    assert TEST_COMMAND in ci
    assert "ruff check src tests examples" in ci


def _expected_prints(code: str) -> list[str]:
    """The output a block promises, written as ``# -> <text>`` (at the end of a line or on a
    line of its own)."""
    return [m.strip() for m in re.findall(r"# -> (.*)$", code, flags=re.MULTILINE)]


@pytest.mark.parametrize(
    "code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_python_block_runs(code: str, tmp_path: Path) -> None:
    proc = _run_in_project(tmp_path, "-c", code)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    for expected in _expected_prints(code):
        assert expected in proc.stdout, f"expected {expected!r} in the output:\n{proc.stdout}"


def _run_in_project(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in ``directory``, which holds the README's files, with a
    ``WFKIT_HOME`` of its own."""
    for name, code in FILES.items():
        (directory / name).write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["WFKIT_HOME"] = str(directory / "wfkit-home")
    env["PYTHONPATH"] = os.pathsep.join([str(directory), env.get("PYTHONPATH", "")]).strip(
        os.pathsep
    )
    return subprocess.run(
        [sys.executable, *args], cwd=directory, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("name", TEST_FILES)
def test_readme_test_file_passes(name: str, tmp_path: Path) -> None:
    proc = _run_in_project(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", name)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert " passed" in proc.stdout


def test_every_readme_file_is_used() -> None:
    # A file block that no test file or script imports would be checked by nothing.
    users = [*PYTHON_BLOCKS, *FILES.values()]
    for name in FILES:
        if name.startswith("test_"):
            continue
        module = name.removesuffix(".py")
        assert any(re.search(rf"\b(import|from) {module}\b", code) for code in users), name


def test_readme_has_python_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 4
