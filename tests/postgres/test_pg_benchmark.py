"""benchmarks/postgres.py runs as a user runs it (a small run, without Prefect) and prints
one JSON document with every figure, the plain psycopg baselines among them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_postgres_benchmark_prints_every_figure(fresh_url: str) -> None:
    command = [
        sys.executable, str(ROOT / "benchmarks" / "postgres.py"), "--url", fresh_url,
        "--tasks", "50", "--processes", "2", "--repeat", "1", "--prefect-python", "",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ}, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    sequential = result["sequential_task_us"]
    for name in (
        "wfkit_postgres",
        "wfkit_sqlite",
        "plain_psycopg_copy_every_100ms",
        "plain_psycopg_transaction_per_task",
    ):
        assert sequential[name]["median"] > 0, name
    assert sequential["prefect"]["status"] == "skipped"
    assert result["empty_flow_ms"]["wfkit_postgres"]["median"] > 0
    processes = result["processes"]
    assert processes["exit_codes_ok"]
    assert processes["task_runs_stored"] == processes["task_runs_expected"] == 2000
