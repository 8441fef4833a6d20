"""The user-facing testing example passes the way the README says to run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("isolated", [True, False], ids=["wf-isolated", "plain"])
def test_examples_testing_passes(tmp_path, isolated):
    args = [sys.executable, "-m", "pytest", "examples/testing", "-q", "-p", "no:cacheprovider"]
    if isolated:
        args.append("--wf-isolated")
    env = {**os.environ, "WFKIT_HOME": str(tmp_path / "home")}
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout
    if isolated:
        assert not (tmp_path / "home").exists()
