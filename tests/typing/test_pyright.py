"""pyright (strict) accepts the typed public API as users write it, and rejects what it must
(see user_code.py). Skipped when pyright is not installed: it is not in the test extra,
because its PyPI package downloads pyright itself (and needs node) on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = Path(__file__).with_name("user_code.py")
SRC = Path(__file__).parents[2] / "src"  # this checkout's wfkit, ahead of an installed one


def test_pyright_accepts_and_rejects_user_code(tmp_path: Path) -> None:
    pytest.importorskip("pyright", reason="pyright is not installed (pip install pyright)")
    config = tmp_path / "pyrightconfig.json"
    config.write_text(
        json.dumps(
            {
                "typeCheckingMode": "strict",
                "extraPaths": [str(SRC)],
                # Read only "# pyright: ignore[rule]" (user_code.py marks mypy's expected
                # errors with "# type: ignore"), and fail on one that is not needed.
                "enableTypeIgnoreComments": False,
                "reportUnnecessaryTypeIgnoreComment": "error",
            }
        )
    )
    command = [sys.executable, "-m", "pyright", "--project", str(config)]
    command += ["--pythonpath", sys.executable, str(USER_CODE)]

    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    if done.returncode != 0:
        pytest.fail(f"pyright found problems in {USER_CODE.name}:\n{done.stdout}{done.stderr}")
