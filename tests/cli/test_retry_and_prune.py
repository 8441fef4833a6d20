"""``wf runs retry`` (the recorded import path, ``--entrypoint``, a flow that cannot be found)
and ``wf store prune``, as subprocesses writing real stores."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from .conftest import TESTS, process_env

Wf = Callable[..., subprocess.CompletedProcess[str]]


def _runs(wf_process: Wf, store: Path, *args: str) -> list[dict[str, object]]:
    result = wf_process("runs", "ls", "--json", "--limit", "0", *args, store=store)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_retry_reruns_the_flow_from_its_recorded_import_path(
    wf_process: Wf, store_copy: Path
) -> None:
    result = wf_process("runs", "retry", "etl-5", store=store_copy, PYTHONPATH=str(TESTS))

    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]  # (after what the flow printed, if anything)
    assert last.startswith("New flow run etl-5 (") and last.endswith("): Completed")
    etl_runs = _runs(wf_process, store_copy, "--flow", "etl")
    assert [(r["name"], r["parameters"], r["state"]) for r in etl_runs] == [
        ("etl-3", {"n": 3}, "Completed"),
        ("etl-5", {"n": 5}, "Completed"),
        ("etl-5", {"n": 5}, "Completed"),
    ]
    assert etl_runs[-1]["task_runs"] == {"Completed": 6}


def test_retry_of_a_run_that_fails_again_exits_1(wf_process: Wf, store_copy: Path) -> None:
    result = wf_process("runs", "retry", "boom", store=store_copy, PYTHONPATH=str(TESTS))

    assert result.returncode == 1
    assert result.stdout.startswith("New flow run boom (")
    assert "): Failed: Flow run encountered an exception: RuntimeError: kaput\n" in result.stdout


def test_retry_when_the_flow_can_no_longer_be_imported(wf_process: Wf, store_copy: Path) -> None:
    result = wf_process("runs", "retry", "etl-3", store=store_copy, cwd=Path("/"))

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Cannot import the flow 'cli._flows:etl' of run 'etl-3'" in result.stderr
    assert "--entrypoint path/to/file.py:etl" in result.stderr
    assert len(_runs(wf_process, store_copy, "--flow", "etl")) == 2  # nothing ran


_SCRIPT = """
from wfkit import flow

@flow(flow_run_name="scripted-{x}")
def scripted(x: int) -> int:
    print("x is", x)
    return x * 2

if __name__ == "__main__":
    scripted(21)
"""


def test_retry_of_a_flow_defined_in_main_needs_an_entrypoint(
    wf_process: Wf, tmp_path: Path
) -> None:
    script, store = tmp_path / "script.py", tmp_path / "runs.db"
    script.write_text(textwrap.dedent(_SCRIPT))
    subprocess.run(
        [sys.executable, str(script)], check=True, env=process_env(WFKIT_STORE=f"sqlite:///{store}")
    )

    without = wf_process("runs", "retry", "scripted-21", store=store)
    assert without.returncode == 1 and "Traceback" not in without.stderr
    assert "was defined in a script run directly (module __main__)" in without.stderr
    assert "--entrypoint path/to/file.py:scripted" in without.stderr

    bad = wf_process("runs", "retry", "scripted-21", "--entrypoint", "script.py", store=store)
    assert bad.returncode == 2 and "is not FILE.py:FLOW" in bad.stderr

    entry = f"{script}:scripted"
    with_entrypoint = wf_process("runs", "retry", "scripted-21", "--entrypoint", entry, store=store)
    assert with_entrypoint.returncode == 0, with_entrypoint.stderr
    assert with_entrypoint.stdout.splitlines()[-1].startswith("New flow run scripted-21 (")
    assert [r["state"] for r in _runs(wf_process, store)] == ["Completed", "Completed"]


def test_prune_deletes_old_runs_and_says_what(wf_process: Wf, store_copy: Path) -> None:
    def prune(*args: str) -> dict[str, int]:
        result = wf_process("store", "prune", "--json", *args, store=store_copy)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    # Every run finished long ago (in 2026-01, on the fake clock): etl-3 and etl-5 with a
    # child flow run each, boom and wide-250.
    dry = wf_process("store", "prune", "--older-than", "30d", "--dry-run", store=store_copy)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "Would remove 6 flow runs, 260 task runs, 800 states and 285 log lines.\n"
    assert len(_runs(wf_process, store_copy)) == 6

    failed = wf_process(
        "store", "prune", "--older-than", "30d", "--state", "failed", store=store_copy
    )
    assert failed.stdout == "Removed 1 flow runs, 0 task runs, 3 states and 2 log lines.\n"
    assert [r["name"] for r in _runs(wf_process, store_copy)] == [
        "etl-3", "child-7", "etl-5", "child-7", "wide-250",
    ]  # fmt: skip

    assert prune("--older-than", "1h", "--cache") == {
        "flow_runs": 5, "task_runs": 260, "states": 797, "logs": 283, "cache_records": 0,
        "dry_run": False,
    }  # fmt: skip
    assert _runs(wf_process, store_copy) == []
    assert wf_process("store", "check", store=store_copy).returncode == 0


def test_prune_keeps_recent_runs(wf_process: Wf, store_copy: Path) -> None:
    result = wf_process("store", "prune", "--older-than", "5000w", store=store_copy)
    assert result.stdout == "Removed 0 flow runs, 0 task runs, 0 states and 0 log lines.\n"
    assert len(_runs(wf_process, store_copy)) == 6


def test_check_finds_a_run_without_a_history_and_exits_1(wf_process: Wf, store_copy: Path) -> None:
    conn = sqlite3.connect(store_copy)
    with conn:
        conn.execute(
            "DELETE FROM flow_run_states WHERE run_seq = (SELECT seq FROM flow_runs WHERE name = 'boom')"
        )
        (boom_id,) = conn.execute("SELECT id FROM flow_runs WHERE name = 'boom'").fetchone()
    conn.close()

    result = wf_process("store", "check", store=store_copy)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout == f"The flow run {boom_id!r} has no state history.\n"
    assert "1 problem(s) found in sqlite:///" in result.stderr
    as_json = wf_process("store", "check", "--json", store=store_copy)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["problems"] == [
        f"The flow run {boom_id!r} has no state history."
    ]
