"""The "Writing a task runner" documentation runs as written: its runner passes the
conformance suite (the tests that need a single-worker runner are skipped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FRAGMENT = Path(__file__).resolve().parents[2] / "docs-fragment-runners.md"


def python_blocks(text: str) -> dict[str, str]:
    """The ```python blocks, by the file name each one's first line names (``# name.py``)."""
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    files = {}
    for block in blocks:
        first, _, _ = block.partition("\n")
        match = re.fullmatch(r"# (\w+\.py)", first)
        assert match, f"a python block must start with '# <file>.py': {first!r}"
        files[match.group(1)] = block
    return files


def test_the_documented_runner_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    files = python_blocks(FRAGMENT.read_text())
    assert set(files) == {"my_runner.py", "test_my_runner.py"}
    for name, source in files.items():
        pytester.path.joinpath(name).write_text(source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["skipped"] == 3  # the single-worker tests
    assert outcomes["passed"] > 20  # the others, and the fragment's own test
