"""wfkit's own test suite leaves nothing behind in the temporary directory: the throwaway
``WFKIT_HOME`` the root conftest makes is removed when pytest exits (also with xdist)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_A_QUICK_TEST = "tests/cli/test_terminal_and_entry_point.py::test_the_console_script_is_the_command_python_m_runs"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_the_suite_removes_its_throwaway_home(tmp_path: Path, workers: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WFKIT_HOME"}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, _A_QUICK_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(tmp_path.glob("wfkit-tests-home-*")) == []
