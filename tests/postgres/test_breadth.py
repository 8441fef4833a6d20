"""Limits, artifacts, assets and events in a PostgreSQL store as a user meets them: a flow
script run as a subprocess records them, ``wf`` reads them back (read-only), and ``wf limits``
changes a limit another process then obeys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

_SCRIPT = textwrap.dedent(
    """
    from wfkit import flow, task
    from wfkit.artifacts import create_markdown_artifact, create_progress_artifact
    from wfkit.artifacts import update_progress_artifact
    from wfkit.assets import materialize
    from wfkit.concurrency import read_limit
    from wfkit.events import emit_event

    @materialize("s3://lake/raw.csv")
    def extract():
        return [1, 2, 3]

    @task(tags=["warehouse"])
    def load(rows):
        assert read_limit("tag:warehouse").active_slots == 1  # this run holds the slot
        progress = create_progress_artifact(10, key="load")
        update_progress_artifact(progress, 75)
        return len(rows)

    @flow(flow_run_name="publish")
    def publish():
        n = load(extract())
        create_markdown_artifact(f"# {n} rows", key="totals")
        emit_event("order.shipped", {"prefect.resource.id": "order-7"}, payload={"n": n})
        return n

    print(publish())
    print(int(read_limit("tag:warehouse").active_slots))
    """
)


def _wf(url: str, *args: str) -> Any:
    """``python -m wfkit ARGS --store URL --json``, checked; its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "wfkit", *args, "--store", url, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_flow_records_limits_artifacts_assets_and_events_that_wf_reads(
    fresh_url: str, tmp_path: Path
) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "wfkit", "limits", "create", "--tag", "warehouse", "1"],
        env={**os.environ, "WFKIT_STORE": fresh_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    script = tmp_path / "publish.py"
    script.write_text(_SCRIPT)
    ran = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "WFKIT_STORE": fresh_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["3", "0"]  # the slot was given back after the task

    (limit,) = _wf(fresh_url, "limits", "ls")
    assert (limit["name"], limit["limit"]) == ("tag:warehouse", 1)
    artifacts = {a["key"]: a for a in _wf(fresh_url, "artifacts", "ls")}
    assert artifacts["load"]["data"] == 75  # one record, updated in place
    assert artifacts["totals"]["data"] == "# 3 rows"
    events = _wf(fresh_url, "events", "ls", "--event", "order.*")
    assert [(e["event"], e["payload"]) for e in events] == [("order.shipped", {"n": 3})]
    assets = _wf(fresh_url, "assets", "ls")
    assert [a["key"] for a in assets] == ["s3://lake/raw.csv"]
