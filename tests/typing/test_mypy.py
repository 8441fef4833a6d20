"""mypy --strict accepts the typed public API as users write it, and rejects what it must
(see user_code.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = Path(__file__).with_name("user_code.py")
SRC = Path(__file__).parents[2] / "src"  # this checkout's wfkit, ahead of an installed one

MYPY_CONFIG = f"""\
[mypy]
strict = True
warn_unused_ignores = True
mypy_path = {SRC}

[mypy-wfkit.*]
# wfkit's own code is checked by `mypy src`; here only what users see of it matters.
ignore_errors = True
"""


def test_mypy_accepts_and_rejects_user_code(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    config = tmp_path / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    # A fresh cache (in tmp_path), so the result is that of a clean checkout.
    command = [sys.executable, "-m", "mypy", "--config-file", str(config)]
    command += ["--cache-dir", str(tmp_path / "cache"), str(USER_CODE)]

    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    if done.returncode != 0:
        pytest.fail(f"mypy found problems in {USER_CODE.name}:\n{done.stdout}{done.stderr}")
