"""Fixtures for engine tests: ``kind`` runs a test for flows and for tasks."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["flow", "task"])
def kind(request: pytest.FixtureRequest) -> str:
    """``"flow"`` or ``"task"``: the test runs once for each (build with ``mode.make(kind, ...)``)."""
    return request.param
