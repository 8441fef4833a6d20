"""Task runs lost by a SIGKILL that arrives N ms after the last task finished (a worker of
``_workloads.py``: ``crash_loss``).

A child process runs a flow of ``n`` tasks against a fresh SQLite store, writes one byte to a
pipe when the last task has finished, and idles in the flow body; the worker kills it with
SIGKILL ``delay`` ms after reading that byte and counts the task runs the store holds as
Completed. The plain-Python baseline commits a row per task with ``sqlite3`` (autocommit).
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import Checks
from _scripts import CRASH_PLAIN, CRASH_WFKIT

DELAYS_MS = (50, 200, 1000)


def _killed_after(script: str, db: Path, n: int, delay_ms: int) -> int | None:
    """Run ``script``, wait for its byte, kill it ``delay_ms`` later; its return code, or
    None when it never signalled (it is killed then too)."""
    read_end, write_end = os.pipe()
    env = {**os.environ, "WFKIT_STORE": f"sqlite:///{db}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(write_end), str(n), str(db)],
        pass_fds=(write_end,), cwd=db.parent, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write_end)
    try:
        signalled = bool(select.select([read_end], [], [], 120)[0]) and os.read(read_end, 1)
        if signalled:
            time.sleep(delay_ms / 1000)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)
    finally:
        os.close(read_end)
    return proc.returncode if signalled else None


def _wfkit_kept(db: Path, checks: Checks) -> int:
    from wfkit.stores import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        flows = [r.state_names for r in store.flow_runs()]
        # (the store sees the killed process is gone: its run is Crashed, not left Running)
        checks.check(flows == [["Pending", "Running", "Crashed"]],
                     "wfkit: the killed flow run is recorded Crashed", flows)  # fmt: skip
        return sum(r.state.is_completed() for r in store.task_runs())
    finally:
        store.close()


def _plain_kept(db: Path, checks: Checks) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM done").fetchone()[0])
    finally:
        conn.close()


def w_crash_loss(p: dict[str, Any]) -> dict[str, Any]:
    checks = Checks()
    n, repeat = p["n"], p["repeat"]
    lost: dict[str, dict[int, list[float]]] = {
        kind: {d: [] for d in DELAYS_MS} for kind in ("wfkit", "plain")
    }
    root = Path.cwd()  # the worker's fresh WFKIT_HOME
    for r in range(repeat):
        for delay in DELAYS_MS:
            for kind, script, kept in (
                ("wfkit", CRASH_WFKIT, _wfkit_kept),
                ("plain", CRASH_PLAIN, _plain_kept),
            ):
                db = root / f"{kind}-{delay}-{r}.db"
                rc = _killed_after(script, db, n, delay)
                checks.check(rc == -signal.SIGKILL, f"{kind}: every child was killed by SIGKILL",
                             f"return code {rc} (None: it never finished its tasks)")  # fmt: skip
                count = kept(db, checks) if rc is not None else 0
                checks.check(0 <= count <= n, f"{kind}: at most {n} runs kept", count)
                lost[kind][delay].append(n - count)
    figures = {
        f"sigkill_lost_task_runs_{delay}ms": {
            "wfkit": lost["wfkit"][delay], "plain": lost["plain"][delay], "n": n,
            "details": {"tasks": n, "task_work_ms": 0.5, "kill_after_last_task_ms": delay},
        }
        for delay in DELAYS_MS
    }  # fmt: skip
    return {"figures": figures, **checks.as_dict()}
