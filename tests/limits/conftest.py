"""Fixtures for the limit, artifact and asset tests.

- ``h``: a fresh test harness (fake clock; ``time.sleep`` in runs is virtual), once with a
  memory store and once with a SQLite file, so both stores serve every test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wfkit.testing import harness
from wfkit.testing.harness import Harness


@pytest.fixture(params=["memory", "sqlite"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with harness(start="2026-01-01T00:00:00Z", store=request.param) as hh:
        yield hh
