"""``isolation_level="SERIALIZABLE"`` with async tasks running concurrently in one event
loop. Run in a subprocess with a timeout: a deadlocked event loop cannot be interrupted, and
a stuck harness in this process would leave its global patches behind for later tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import wfkit

SRC = Path(wfkit.__file__).resolve().parents[1]

SCRIPT = """
import asyncio
from wfkit import flow, task
from wfkit.cache_policies import INPUTS
from wfkit.context import use_runtime

SERIAL = INPUTS.configure(isolation_level="SERIALIZABLE")
BODY_RUNS = []

@task(cache_policy=SERIAL)
async def fetch(x):
    BODY_RUNS.append(x)
    await asyncio.sleep(0.05)
    return x * 2

async def main():
    return await asyncio.gather(*(fetch(1) for _ in range(4)))

@flow
async def fan_out():
    return await asyncio.gather(*(fetch(2) for _ in range(4)))

with use_runtime(store="memory://") as rt:
    print("GATHER", asyncio.run(main()), len(BODY_RUNS), flush=True)
    print("FLOW", asyncio.run(fan_out()), len(BODY_RUNS), flush=True)
    print("STATES", sorted(r.state.name for r in rt.store.task_runs()), flush=True)
"""


def run_script(tmp_path: Path) -> str:
    script = tmp_path / "serial_async.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {
        **os.environ,
        "WFKIT_HOME": str(tmp_path / "home"),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(
            "concurrent SERIALIZABLE async task runs with the same key deadlocked the event "
            f"loop (no exit after 15 s). Output so far:\n{out}"
        ) from None
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_concurrent_async_serializable_runs_compute_once_without_deadlock(
    tmp_path: Path,
) -> None:
    out = run_script(tmp_path)
    assert "GATHER [2, 2, 2, 2] 1" in out
    assert "FLOW [4, 4, 4, 4] 2" in out
    assert "STATES ['Cached', 'Cached', 'Cached', 'Cached', 'Cached', 'Cached', " in out
