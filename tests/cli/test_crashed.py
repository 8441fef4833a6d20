"""A run whose process was killed shows as Crashed, with what killed it, in ``wf runs ls``,
``wf runs show`` and ``wf store info`` (which counts no live owner for it)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from .conftest import process_env
from .test_follow import _wait_for_run

Wf = Callable[..., subprocess.CompletedProcess[str]]

_KILLED = textwrap.dedent(
    """
    import time
    from wfkit import flow, get_run_logger

    @flow(flow_run_name="doomed")
    def doomed():
        get_run_logger().info("started")
        time.sleep(120)

    doomed()
    """
)


def test_a_killed_run_shows_crashed_with_what_killed_it(wf_process: Wf, tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED], env=process_env(WFKIT_STORE=f"sqlite:///{store}")
    )
    try:
        _wait_for_run(f"sqlite:///{store}", "doomed")
        running = json.loads(wf_process("runs", "ls", "--json", store=store).stdout)
        assert [r["state"] for r in running] == ["Running"]
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)

    listed = wf_process("runs", "ls", store=store)
    assert listed.returncode == 0
    row = listed.stdout.splitlines()[1]
    assert row.startswith("doomed") and "Crashed: " in row and str(writer.pid) in row
    shown = wf_process("runs", "show", "doomed", store=store).stdout
    assert "State:       Crashed: " in shown and str(writer.pid) in shown
    assert "Live owners:    none" in wf_process("store", "info", store=store).stdout
