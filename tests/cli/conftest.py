"""Fixtures for the ``wf`` tests: a SQLite store filled once by real flow runs (on a fake
clock starting at ``START``, so times in outputs are stable), and ways to run ``wf``.

- ``filled``: the path of that store (read-only tests share it);
- ``store_copy``: a fresh copy of it, for the tests that write (prune, retry);
- ``wf_run(*args)``: ``wf`` in-process (click's runner, stdout not a terminal), local time
  UTC; returns the result (``.exit_code``, ``.stdout``, ``.stderr``);
- ``wf_process(*args)``: ``python -m wfkit`` in a subprocess, as a user runs it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import harness

from ._flows import boom, etl, wide

START = "2026-01-01T00:00:00Z"
TESTS = Path(__file__).resolve().parents[1]  # tests/: where `cli._flows` is imported from


def fill(path: Path) -> None:
    """Record the runs every ``wf`` test reads: etl-3, etl-5, boom (failed), wide-250."""
    with harness(start=START, store=SqliteStore(path)):
        etl(3)
        etl(5)
        boom(return_state=True)
        wide(250)


@pytest.fixture(scope="session")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wf") / "runs.db"
    fill(path)
    return path


@pytest.fixture
def store_copy(filled: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    source, target = sqlite3.connect(filled), sqlite3.connect(copy)
    try:
        source.backup(target)  # (a consistent copy, whatever is still in the WAL)
    finally:
        source.close()
        target.close()
    copy.chmod(0o600)
    return copy


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC for the test (outputs show local time)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def wf_run(utc: None, filled: Path) -> Callable[..., Result]:
    from wfkit.cli import wf

    def run(*args: str, store: Path | str | None = filled) -> Result:
        extra = ["--store", _url(store)] if store is not None else []
        return CliRunner().invoke(wf, [*args, *extra], catch_exceptions=False)

    return run


def _url(store: Path | str) -> str:
    return store if isinstance(store, str) else f"sqlite:///{store}"


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a ``wf`` subprocess: this checkout's sources, local time UTC."""
    env = {**os.environ, "TZ": "UTC", **extra}
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(
        [src, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    return env


@pytest.fixture
def wf_process(filled: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, store: Path | str | None = filled, cwd: Path | None = None, **env: Any
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--store", _url(store)] if store is not None else []
        return subprocess.run(
            [sys.executable, "-m", "wfkit", *args, *extra],
            capture_output=True,
            text=True,
            timeout=120,
            env=process_env(**env),
            cwd=cwd,
        )

    return run
