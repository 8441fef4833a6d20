"""``wf runs logs --follow`` tails a run that another process is recording, and ends when the
run does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from wfkit.exceptions import StoreError
from wfkit.stores import open_store

from .conftest import process_env

# The writer: a flow that logs a line, waits for the test to say "go" (a file appearing),
# then logs three more lines with pauses between them (real time: no harness here).
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from wfkit import flow, get_run_logger

    go = Path(sys.argv[1])

    @flow(flow_run_name="tailed")
    def tailed():
        log = get_run_logger()
        log.info("line 0")
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for i in (1, 2, 3):
            time.sleep(0.2)
            log.warning("line %d", i)

    tailed()
    """
)


def _wait_for_run(url: str, name: str) -> None:
    """Until the writer's run (and its first line) is in the store (at most ~60 s)."""
    for _ in range(1200):
        try:
            store = open_store(url, read_only=True)
            runs = store.find_flow_runs(name)
            if runs and store.logs_after(runs[0].id).records:
                store.close()
                return
            store.close()
        except StoreError:  # (not created yet)
            pass
        threading.Event().wait(0.05)  # (real time, whatever a test harness does to sleep)
    raise AssertionError(f"the writer's run {name!r} never appeared in {url}")


def test_follow_tails_a_run_another_process_records(tmp_path: Path) -> None:
    url, go = f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(go)], env=process_env(WFKIT_STORE=url)
    )
    try:
        _wait_for_run(url, "tailed")
        follower = subprocess.Popen(
            [sys.executable, "-m", "wfkit", "runs", "logs", "tailed", "--follow", "--store", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=process_env(),
        )
        assert follower.stdout is not None
        # Printed while the run is still going:
        assert follower.stdout.readline().endswith(
            "flow Beginning flow run 'tailed' for flow 'tailed'\n"
        )
        assert follower.stdout.readline().endswith("INFO     flow line 0\n")
        assert follower.poll() is None  # still following
        go.touch()
        rest, errors = follower.communicate(timeout=60)
    finally:
        go.touch()  # (if the test failed before: let the writer end)
        writer.wait(timeout=60)
    assert follower.returncode == 0, errors
    lines = [line.split(maxsplit=3)[3] for line in rest.splitlines()]
    assert lines == [
        "flow line 1",
        "flow line 2",
        "flow line 3",
        "flow Finished in state Completed()",
    ]
    assert writer.returncode == 0


def test_follow_of_a_finished_run_prints_its_lines_and_ends(
    wf_process: object, filled: Path
) -> None:
    result = wf_process("runs", "logs", "boom", "--follow", "--level", "error")  # type: ignore[operator]
    assert result.returncode == 0
    assert result.stdout.startswith("2026-01-01 00:00:07 ERROR    flow Finished in state Failed(")
    assert "RuntimeError: kaput" in result.stdout
