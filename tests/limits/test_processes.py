"""Limits hold across processes that share a SQLite store, and a process that dies does not
keep its slots (Prefect's global concurrency limits page,
docs/v3/how-to-guides/workflows/global-concurrency-limits.mdx: limits are shared by every
process that uses them; wfkit keeps them in the store instead of a server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wfkit.concurrency import AcquireConcurrencySlotTimeoutError, create_limit, read_limit
from wfkit.concurrency.sync import concurrency
from wfkit.context import use_runtime

_HOLDER = """
import sys, time
from wfkit.concurrency.sync import concurrency
with concurrency("db"):
    print("held", flush=True)
    sys.stdin.readline()  # hold until told to go on (or killed)
print("released", flush=True)
"""


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with use_runtime(store=url):
        create_limit("db", 1)
        yield url


def _holder(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WFKIT_STORE": url}
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_slot_held_by_another_process_is_not_granted_until_it_is_given_back(store_url):
    proc = _holder(store_url)
    try:
        with use_runtime(store=store_url):
            assert read_limit("db").active_slots == 1
            with pytest.raises(AcquireConcurrencySlotTimeoutError, match="'db'"):
                with concurrency("db", timeout_seconds=0.2):
                    pass  # pragma: no cover - never entered
            out, _ = proc.communicate("go\n", timeout=60)
            assert out == "released\n"
            with concurrency("db", timeout_seconds=60):
                assert read_limit("db").active_slots == 1
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_does_not_keep_its_slot(store_url):
    proc = _holder(store_url)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with use_runtime(store=store_url):
        with concurrency("db", timeout_seconds=60):
            assert read_limit("db").active_slots == 1  # only this one: the dead lease is gone
