"""The pages read a store that another process is writing: every page is served (never a
500, never a traceback) while a flow records its task runs, and shows them as they land."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from starlette.testclient import TestClient

from wfkit.stores.sqlite import SqliteStore
from wfkit.ui import create_app

from .conftest import process_env, wait_for_run

_BUSY = textwrap.dedent(
    """
    import time
    from wfkit import flow, get_run_logger, task

    @task(task_run_name="step-{i}")
    def step(i):
        get_run_logger().info("step %d", i)
        time.sleep(0.005)

    @flow(flow_run_name="busy")
    def busy():
        for i in range(400):
            step(i)

    busy()
    """
)


def test_pages_are_served_while_another_process_records_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", _BUSY],
        env=process_env(WFKIT_STORE=f"sqlite:///{path}"),
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_run(path, "busy")
        with SqliteStore(path, read_only=True) as store:
            client = TestClient(create_app(store))
            run_id = store.find_flow_runs("busy")[0].id
            while writer.poll() is None:
                for url in ("/", f"/runs/{run_id}", f"/runs/{run_id}/logs?level=info", "/store"):
                    page = client.get(url)
                    assert page.status_code == 200, (url, page.text[-2000:])
            final = client.get(f"/runs/{run_id}").text
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert '<span class="badge completed">Completed</span></h1>' in final
    assert "<h2>Task runs <small>400</small></h2>" in final
