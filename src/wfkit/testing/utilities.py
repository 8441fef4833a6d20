"""Prefect's testing helpers under their import path (``prefect.testing.utilities``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wfkit.testing.harness import Harness, harness

__all__ = ["prefect_test_harness"]


@contextmanager
def prefect_test_harness(server_startup_timeout: int | None = 30) -> Iterator[Harness]:
    """Run everything inside the block against a fresh, isolated run store, as Prefect's
    ``prefect_test_harness`` does: :func:`wfkit.testing.harness`, with its fake clock
    (sleeps, retry delays and timeouts take no real time) and an in-memory store.

    Another ``prefect_test_harness`` (or the pytest plugin's per-test harness) may be
    opened inside it: the inner one is in force until it exits.

    Args:
        server_startup_timeout: accepted for Prefect's signature and ignored: wfkit starts
            no server.

    Yields:
        The :class:`~wfkit.testing.Harness` (Prefect's yields nothing; ``with
        prefect_test_harness():`` works the same).
    """
    # (background: like Prefect's, it may be nested -- a function-scoped one inside a
    # session-scoped one -- and the inner one shadows the outer until it exits)
    with harness(background=True) as h:
        yield h
