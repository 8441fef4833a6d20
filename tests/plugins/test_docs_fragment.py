"""The "Writing a plugin" README fragment stays true: each ``python`` block runs in a fresh
interpreter (with its own ``WFKIT_HOME``) and prints what its ``# -> ...`` comments say.

(The fragment becomes part of README.md, whose blocks ``tests/examples/test_readme.py`` runs
the same way; this test then reads README.md's "Extending wfkit" section instead.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wfkit

ROOT = Path(__file__).resolve().parents[2]
FRAGMENT = (ROOT / "docs-fragment-plugins.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", FRAGMENT, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize(
    "code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_fragment_block_runs_and_prints_what_it_says(code: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["WFKIT_HOME"] = str(tmp_path / "wfkit-home")
    env["PYTHONPATH"] = str(Path(wfkit.__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    promised = re.findall(r"# -> (.*)$", code, flags=re.MULTILINE)
    assert promised, "each block says what it prints"
    for expected in promised:
        assert expected.strip() in proc.stdout.splitlines(), proc.stdout


def test_fragment_shows_a_wrapper_and_the_entry_point_group() -> None:
    assert len(PYTHON_BLOCKS) == 2
    assert "@wfkit.hookimpl(wrapper=True)" in FRAGMENT
    assert "[project.entry-points.wfkit]" in FRAGMENT
