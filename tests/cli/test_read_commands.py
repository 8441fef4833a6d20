"""``wf runs ls/show/logs`` and ``wf store info/check`` in-process, against a store filled by
real flow runs: golden outputs (ids, host, pid, flow versions and "ago" normalised) and JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from wfkit.stores._sqlite_schema import SCHEMA_VERSION
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import harness

from ._flows import boom

Wf = Callable[..., Result]

_NORMALISE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<ID>"),
    (re.compile(r"\(\S+ ago\)"), "(<AGO>)"),
    (re.compile(r"version [0-9a-f]{32}"), "version <HASH>"),
    (re.compile(r"Owner:( +)\S+ pid \d+"), r"Owner:\1<HOST> pid <PID>"),
]


def normalised(text: str) -> str:
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return text


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return normalised(result.stdout)


LS = """\
RUN       FLOW   STATE      STARTED              DURATION  TASK RUNS      ID
etl-3     etl    Completed  2026-01-01 00:00:00  6.00s     4 Completed    <ID>
child-7   child  Completed  2026-01-01 00:00:00  0.00s     -              <ID>
etl-5     etl    Completed  2026-01-01 00:00:06  1.00s     6 Completed    <ID>
child-7   child  Completed  2026-01-01 00:00:06  0.00s     -              <ID>
boom      boom   Failed     2026-01-01 00:00:07  0.00s     -              <ID>
wide-250  wide   Completed  2026-01-01 00:00:07  0.00s     250 Completed  <ID>
"""


def test_ls_lists_runs_oldest_first_with_task_counts(wf_run: Wf) -> None:
    assert ok(wf_run("runs", "ls")) == LS


def test_ls_filters_and_limit(wf_run: Wf) -> None:
    def names(*args: str) -> list[str]:
        return [run["name"] for run in json.loads(wf_run("runs", "ls", "--json", *args).stdout)]

    assert names("--flow", "etl") == ["etl-3", "etl-5"]
    assert names("--state", "failed") == ["boom"]
    assert names("--state", "FAILED", "--state", "completed", "--limit", "2") == [
        "boom",
        "wide-250",
    ]
    assert names("--limit", "1") == ["wide-250"]
    assert names("--state", "failed", "--state", "completed", "--limit", "8") == [
        "etl-3", "child-7", "etl-5", "child-7", "boom", "wide-250",
    ]  # fmt: skip
    assert names("--since", "2026-01-01T00:00:06+00:00", "--until", "2026-01-01T00:00:07Z") == [
        "etl-5",
        "child-7",
    ]
    assert names("--tag", "nightly") == []


def test_ls_json_is_one_document_with_task_counts(wf_run: Wf) -> None:
    result = wf_run("runs", "ls", "--json", "--flow", "etl")
    runs = json.loads(result.stdout)

    assert [(r["name"], r["state"], r["task_runs"]) for r in runs] == [
        ("etl-3", "Completed", {"Completed": 4}),
        ("etl-5", "Completed", {"Completed": 6}),
    ]
    assert runs[0]["start_time"] == "2026-01-01T00:00:00+00:00"
    assert runs[0]["flow_path"] == "cli._flows:etl"
    assert runs[0]["parameters"] == {"n": 3}


def test_ls_with_nothing_to_show(wf_run: Wf) -> None:
    result = wf_run("runs", "ls", "--flow", "nope")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "No flow runs match.\n")
    as_json = wf_run("runs", "ls", "--flow", "nope", "--json")
    assert (as_json.exit_code, as_json.stdout, as_json.stderr) == (0, "[]\n", "")


SHOW = """\
Flow run etl-3 (<ID>)
Flow:        etl (version <HASH>)
Import path: cli._flows:etl
State:       Completed
Parameters:  {"n": 3}
Tags:        -
Created:     2026-01-01 00:00:00 (<AGO>)
Started:     2026-01-01 00:00:00 (<AGO>)
Ended:       2026-01-01 00:00:06 (<AGO>)
Duration:    6.00s
Owner:       <HOST> pid <PID>

State history
2026-01-01 00:00:00 Pending           0.00s
2026-01-01 00:00:00 Running           6.00s
2026-01-01 00:00:06 Completed

Task runs (4: 4 Completed)
  ├─ call-child-7 Completed 0.00s
  │  └─ flow run child-7 (child) Completed 0.00s
  ├─ add-0        Completed 0.00s
  ├─ add-1        Completed 0.00s
  └─ add-2        Completed 5.00s 2 attempts, waited 5.00s

Log lines
00:00:00 INFO     flow Beginning flow run 'etl-3' for flow 'etl'
00:00:00 INFO     flow summing 3 numbers
00:00:00 WARNING  flow a warning
00:00:00 INFO     call-child-7 Finished in state Completed()
00:00:01 INFO     add-0 adding one to 0
00:00:01 INFO     add-0 Finished in state Completed()
00:00:01 INFO     add-1 adding one to 1
00:00:01 INFO     add-1 Finished in state Completed()
00:00:01 INFO     add-2 Task run encountered an exception: ValueError: flaky - Retry 1/1 will start 5 second(s) from now
00:00:06 INFO     add-2 adding one to 2
00:00:06 INFO     add-2 Finished in state Completed()
00:00:06 INFO     flow Finished in state Completed()
"""


def test_show_a_run_by_name(wf_run: Wf) -> None:
    assert ok(wf_run("runs", "show", "etl-3")) == SHOW


def test_show_finds_a_run_by_id_or_a_unique_prefix(wf_run: Wf, tmp_path: Path) -> None:
    run_id = json.loads(wf_run("runs", "ls", "--json", "--flow", "boom").stdout)[0]["id"]
    result = wf_run("runs", "show", run_id)
    assert result.exit_code == 0 and result.stdout.startswith(f"Flow run boom ({run_id})")

    one = tmp_path / "one.db"
    with harness(store=SqliteStore(one)):
        boom(return_state=True)
    only_id = json.loads(wf_run("runs", "ls", "--json", store=one).stdout)[0]["id"]
    result = wf_run("runs", "show", only_id[:8], store=one)
    assert result.exit_code == 0 and result.stdout.startswith(f"Flow run boom ({only_id})")


def test_an_ambiguous_prefix_lists_the_candidates(wf_run: Wf) -> None:
    ids = [run["id"] for run in json.loads(wf_run("runs", "ls", "--json").stdout)]
    prefix = ids[0][:-2]  # (ids made together share all but their last characters)

    result = wf_run("runs", "show", prefix)

    assert result.exit_code == 1 and result.stdout == ""
    assert f"Error: RUN={prefix!r} is ambiguous: it matches 6 flow runs." in result.stderr
    assert all(f"  {run_id}  " in result.stderr for run_id in ids)


def test_an_ambiguous_name_lists_the_candidates(wf_run: Wf) -> None:
    result = wf_run("runs", "show", "child-7")
    assert result.exit_code == 1
    assert "RUN='child-7' is ambiguous: it matches 2 flow runs" in result.stderr


def test_show_a_failed_run_shows_its_traceback(wf_run: Wf) -> None:
    out = ok(wf_run("runs", "show", "boom"))
    assert "State:       Failed: Flow run encountered an exception: RuntimeError: kaput" in out
    traceback = out.split("\nTraceback\n", 1)[1]
    assert "Traceback (most recent call last):" in traceback
    assert 'raise RuntimeError("kaput")' in traceback


def test_show_summarises_a_large_run_per_task_and_all_lists_it(wf_run: Wf) -> None:
    out = ok(wf_run("runs", "show", "wide-250"))
    assert (
        "Task runs (250: 250 Completed)\n  TASK  RUNS  STATES         ATTEMPTS\n  noop  250   250 Completed  250\n"
        in out
    )
    assert "noop-17" not in out

    everything = ok(wf_run("runs", "show", "wide-250", "--all"))
    assert "├─ noop-17 " in everything and "└─ noop-249 " in everything


def test_show_json(wf_run: Wf) -> None:
    shown = json.loads(wf_run("runs", "show", "etl-3", "--json").stdout)

    assert shown["name"] == "etl-3" and shown["task_runs"] == {"Completed": 4}
    assert [s["name"] for s in shown["states"]] == ["Pending", "Running", "Completed"]
    retried = next(t for t in shown["task_run_list"] if t["name"] == "add-2")
    assert [s["name"] for s in retried["states"]] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Completed",
    ]  # fmt: skip
    assert [c["name"] for c in shown["child_flow_runs"]] == ["child-7"]
    assert shown["logs"][-1]["message"] == "Finished in state Completed()"


LOGS = """\
2026-01-01 00:00:00 INFO     flow summing 3 numbers
2026-01-01 00:00:00 WARNING  flow a warning
2026-01-01 00:00:00 INFO     call-child-7 Finished in state Completed()
"""


def test_logs_with_level_and_task_filters(wf_run: Wf) -> None:
    everything = ok(wf_run("runs", "logs", "etl-3"))
    assert everything.splitlines()[1:4] == LOGS.splitlines()
    assert ok(wf_run("runs", "logs", "etl-3", "--level", "warning")) == (
        "2026-01-01 00:00:00 WARNING  flow a warning\n"
    )
    assert ok(wf_run("runs", "logs", "etl-3", "--task", "add-1")) == (
        "2026-01-01 00:00:01 INFO     add-1 adding one to 1\n"
        "2026-01-01 00:00:01 INFO     add-1 Finished in state Completed()\n"
    )
    by_task = ok(wf_run("runs", "logs", "etl-3", "--task", "add"))
    assert [line.split()[3] for line in by_task.splitlines()] == [
        "add-0", "add-0", "add-1", "add-1", "add-2", "add-2", "add-2",
    ]  # fmt: skip
    lines = json.loads(wf_run("runs", "logs", "etl-3", "--json", "--level", "30").stdout)
    assert [(r["level"], r["message"]) for r in lines] == [("WARNING", "a warning")]


def test_store_info(wf_run: Wf, filled: object) -> None:
    out = ok(wf_run("store", "info"))
    assert f"URL:            sqlite:///{filled}?mode=ro\n" in out
    assert f"Path:           {filled}\nSchema version: {SCHEMA_VERSION}\n" in out
    assert "Flow runs:      6 (5 Completed, 1 Failed)\n" in out
    assert "Task runs:      260 (260 Completed)\n" in out
    assert "Live owners:    none\n" in out
    info = json.loads(wf_run("store", "info", "--json").stdout)
    assert info["flow_runs"] == {"Completed": 5, "Failed": 1}
    assert info["details"]["schema_version"] == SCHEMA_VERSION


def test_store_check_of_a_sound_store(wf_run: Wf) -> None:
    result = wf_run("store", "check")
    assert result.exit_code == 0
    assert result.stdout.startswith("No problems found in sqlite:///")


def test_logs_of_a_run_with_many_task_runs_show_task_run_ids(
    wf_run: Wf, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wfkit.cli.runs

    monkeypatch.setattr(wfkit.cli.runs, "_NAMED_TASKS", 3)  # etl-3 has 4 task runs
    lines = ok(wf_run("runs", "logs", "etl-3", "--task", "add-1")).splitlines()
    assert [line.split()[3] for line in lines] == ["<ID>", "<ID>"]
