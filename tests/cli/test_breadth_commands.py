"""``wf limits``, ``wf artifacts``, ``wf assets``, ``wf events`` and the artifacts of
``wf runs show``: against a store filled by real flow runs (on the harness's fake clock, so
times are stable), in-process for golden outputs and as ``python -m wfkit`` subprocesses for
what a user types (writing commands, bad input)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from wfkit import flow, task
from wfkit.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from wfkit.assets import materialize
from wfkit.concurrency import read_limit
from wfkit.concurrency.sync import concurrency
from wfkit.context import use_runtime
from wfkit.events import emit_event
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import harness

from .conftest import START
from .test_read_commands import ok

Wf = Callable[..., Result]
WfProcess = Callable[..., subprocess.CompletedProcess[str]]


@materialize("s3://lake/raw.csv")
def extract() -> list[int]:
    return [1, 2, 3]


@materialize("s3://lake/clean.csv", asset_deps=["s3://lake/raw.csv"])
def clean(rows: list[int]) -> list[int]:
    return [r * 2 for r in rows]


@task(task_run_name="report")
def report(rows: list[int]) -> None:
    create_markdown_artifact(
        "# Totals\n\n<script>x</script> *sum*", key="totals", description="Nightly totals"
    )
    create_table_artifact([{"n": 1, "label": "one"}, {"n": 2, "extra": None}], key="rows")
    create_link_artifact("https://example.com/dash", link_text="Dashboard", key="dash")
    progress = create_progress_artifact(10, key="load")
    update_progress_artifact(progress, 75)


@flow(flow_run_name="publish")
def publish() -> None:
    rows = clean(extract())
    report(rows)
    create_markdown_artifact("second version", key="totals")
    emit_event("order.shipped", {"prefect.resource.id": "order-7"}, payload={"items": 2})


@flow(flow_run_name="quiet")
def quiet() -> None:
    emit_event("order.returned", {"prefect.resource.id": "order-8"})


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("breadth") / "runs.db"
    with harness(start=START, store=SqliteStore(path)):
        publish()
        quiet()
    return path


def run_in(made: Path, wf_run: Wf, *args: str) -> Result:
    return wf_run(*args, store=made)


# wf artifacts ---------------------------------------------------------------------------------
ARTIFACTS_LS = """\
KEY     TYPE      DESCRIPTION  FLOW RUN  CREATED              ID
rows    table     -            publish   2026-01-01 00:00:00  <ID>
dash    link      -            publish   2026-01-01 00:00:00  <ID>
load    progress  -            publish   2026-01-01 00:00:00  <ID>
totals  markdown  -            publish   2026-01-01 00:00:00  <ID>
"""


def test_artifacts_ls_shows_the_latest_version_of_each_key(made: Path, wf_run: Wf) -> None:
    assert ok(run_in(made, wf_run, "artifacts", "ls")) == ARTIFACTS_LS


def test_artifacts_ls_all_key_run_and_json(made: Path, wf_run: Wf) -> None:
    def keys(*args: str) -> list[tuple[str, str | None]]:
        found = json.loads(run_in(made, wf_run, "artifacts", "ls", "--json", *args).stdout)
        return [(a["key"], a["description"]) for a in found]

    assert keys("--all") == [
        ("totals", "Nightly totals"), ("rows", None), ("dash", None), ("load", None),
        ("totals", None),
    ]  # fmt: skip
    assert keys("--key", "totals") == [("totals", "Nightly totals"), ("totals", None)]
    assert keys("--run", "publish") == [("rows", None), ("dash", None), ("load", None),
                                        ("totals", None)]  # fmt: skip
    assert keys("--run", "quiet") == []
    listed = json.loads(run_in(made, wf_run, "artifacts", "ls", "--json").stdout)
    assert listed[2]["type"] == "progress" and listed[2]["data"] == 75.0
    assert listed[0]["created"] == "2026-01-01T00:00:00+00:00"
    assert run_in(made, wf_run, "artifacts", "ls", "--run", "quiet").stderr == (
        "No artifacts match.\n"
    )


def test_artifacts_inspect_by_key_and_by_id(made: Path, wf_run: Wf) -> None:
    table = ok(run_in(made, wf_run, "artifacts", "inspect", "rows"))
    assert table.endswith("\nn  label  extra\n1  one\n2\n"), table
    assert "Type:        table\n" in table
    first = json.loads(run_in(made, wf_run, "artifacts", "ls", "--json", "--all").stdout)[0]
    shown = ok(run_in(made, wf_run, "artifacts", "inspect", first["id"]))
    assert shown.endswith(
        "Description: Nightly totals\n"
        "Flow run:    publish\n"
        "Task run:    <ID>\n"
        "Created:     2026-01-01 00:00:00\n"
        "Updated:     2026-01-01 00:00:00\n"
        "\n# Totals\n\n<script>x</script> *sum*\n"
    ), shown
    latest = json.loads(run_in(made, wf_run, "artifacts", "inspect", "totals", "--json").stdout)
    assert (latest["data"], latest["task_run_id"]) == ("second version", None)
    assert ok(run_in(made, wf_run, "artifacts", "inspect", "load")).endswith("\n75%\n")


# wf runs show ---------------------------------------------------------------------------------
def test_runs_show_lists_the_runs_artifacts_after_its_task_tree(made: Path, wf_run: Wf) -> None:
    shown = ok(run_in(made, wf_run, "runs", "show", "publish"))
    section = shown[shown.index("Task runs") : shown.index("Log lines")]
    assert section.endswith(
        "\nArtifacts (5)\n"
        "  KEY     TYPE      DESCRIPTION\n"
        "  totals  markdown  Nightly totals\n"
        "  rows    table     -\n"
        "  dash    link      -\n"
        "  load    progress  -\n"
        "  totals  markdown  -\n"
        "\n"
    ), section
    assert "Artifacts" not in ok(run_in(made, wf_run, "runs", "show", "quiet"))
    data = json.loads(run_in(made, wf_run, "runs", "show", "publish", "--json").stdout)
    assert [a["key"] for a in data["artifacts"]] == ["totals", "rows", "dash", "load", "totals"]
    quiet_data = json.loads(run_in(made, wf_run, "runs", "show", "quiet", "--json").stdout)
    assert quiet_data["artifacts"] == []


# wf assets and wf events ----------------------------------------------------------------------
ASSETS_LS = """\
ASSET                LAST       MATERIALIZED         DEPENDS ON         FLOW RUN
s3://lake/clean.csv  succeeded  2026-01-01 00:00:00  s3://lake/raw.csv  publish
s3://lake/raw.csv    succeeded  2026-01-01 00:00:00  -                  publish
"""


def test_assets_ls(made: Path, wf_run: Wf) -> None:
    assert ok(run_in(made, wf_run, "assets", "ls")) == ASSETS_LS
    found = json.loads(run_in(made, wf_run, "assets", "ls", "--json").stdout)
    assert [(a["key"], a["succeeded"], a["depends_on"]) for a in found] == [
        ("s3://lake/clean.csv", True, ["s3://lake/raw.csv"]),
        ("s3://lake/raw.csv", True, []),
    ]


EVENTS_LS = """\
OCCURRED             EVENT                                    RESOURCE             FLOW RUN
2026-01-01 00:00:00  prefect.asset.materialization.succeeded  s3://lake/raw.csv    publish
2026-01-01 00:00:00  prefect.asset.materialization.succeeded  s3://lake/clean.csv  publish
2026-01-01 00:00:00  order.shipped                            order-7              publish
2026-01-01 00:00:00  order.returned                           order-8              quiet
"""


def test_events_ls_and_filters(made: Path, wf_run: Wf) -> None:
    assert ok(run_in(made, wf_run, "events", "ls")) == EVENTS_LS

    def names(*args: str) -> list[str]:
        found = json.loads(run_in(made, wf_run, "events", "ls", "--json", *args).stdout)
        return [e["event"] for e in found]

    assert names("--event", "order.*") == ["order.shipped", "order.returned"]
    assert names("--run", "quiet") == ["order.returned"]
    assert names("--resource", "order-7") == ["order.shipped"]
    assert names("--limit", "1") == ["order.returned"]
    shipped = json.loads(run_in(made, wf_run, "events", "ls", "--json", "--limit", "2").stdout)
    assert shipped[0]["payload"] == {"items": 2}
    assert run_in(made, wf_run, "events", "ls", "--event", "nope").stderr == "No events match.\n"


# wf limits ------------------------------------------------------------------------------------
_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

LIMITS_LS = """\
NAME          LIMIT  ACTIVE SLOTS  DECAY/S  CREATED
api           5      0             0.5      <TIME>
database      10     0             -        <TIME>
tag:database  3      0             -        <TIME>
"""


def test_limits_create_ls_delete_as_a_user_runs_them(wf_process: WfProcess, tmp_path: Path) -> None:
    store = tmp_path / "limits.db"

    def wf(*args: str) -> subprocess.CompletedProcess[str]:
        result = wf_process(*args, store=store)
        assert result.returncode == 0, result.stderr
        return result

    assert wf("limits", "create", "database", "--limit", "10").stdout == (
        "Limit 'database': 10 slots.\n"
    )
    assert wf("limits", "create", "api", "--limit", "5", "--slot-decay-per-sec", "0.5").stdout == (
        "Limit 'api': 5 slots, slots drain at 0.5/s.\n"
    )
    assert wf("limits", "create", "--tag", "database", "3").stdout == (
        "Limit 'tag:database': 3 slots.\n"
    )
    assert _TIME.sub("<TIME>", wf("limits", "ls").stdout) == LIMITS_LS
    # The limits are the ones Python code uses, in this process as in any other.
    with use_runtime(store=SqliteStore(store)):
        assert read_limit("tag:database") is not None
        with concurrency("database", occupy=4):
            held = json.loads(wf_process("limits", "ls", "--json", store=store).stdout)
    assert [(x["name"], x["limit"], x["active_slots"]) for x in held] == [
        ("api", 5, 0.0), ("database", 10, 4.0), ("tag:database", 3, 0.0),
    ]  # fmt: skip
    # Resizing keeps the decay unless a new one is given.
    assert wf("limits", "create", "api", "8", "--json").stdout.count('"slot_decay_per_second": 0.5')
    assert (
        wf("limits", "delete", "--tag", "database").stdout == "Deleted the limit 'tag:database'.\n"
    )
    assert wf("limits", "delete", "api").stdout == "Deleted the limit 'api'.\n"
    assert [x["name"] for x in json.loads(wf("limits", "ls", "--json").stdout)] == ["database"]


def test_limits_ls_reads_without_creating_a_store(wf_process: WfProcess, tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = wf_process("limits", "ls", store=missing)
    assert result.returncode == 1 and "There is no run store" in result.stderr
    assert not missing.exists()


def test_no_limits_yet(wf_process: WfProcess, made: Path) -> None:
    result = wf_process("limits", "ls", store=made)
    assert (result.returncode, result.stdout) == (0, "")
    assert "No concurrency limits yet" in result.stderr
    assert json.loads(wf_process("limits", "ls", "--json", store=made).stdout) == []


@pytest.mark.parametrize(
    ("args", "code", "phrases"),
    [
        (["limits", "create", "x", "--limit", "-1"], 2, ["--limit -1 is negative"]),
        (["limits", "create", "x", "-1"], 2, ["No such option '-1'"]),
        (
            ["limits", "create", "x", "--limit", "2", "--slot-decay-per-sec", "-0.5"],
            2,
            ["--slot-decay-per-sec -0.5 is not a rate >= 0"],
        ),
        (["limits", "create", "--limit", "3"], 2, ["Give the limit's NAME, or --tag TAG"]),
        (["limits", "create", "x", "--tag", "y", "3"], 2, ["Give either NAME or --tag, not both"]),
        (["limits", "create", "x"], 2, ["Give the number of slots"]),
        (["limits", "create", "x", "3", "--limit", "4"], 2, ["LIMIT=3 and --limit 4 disagree"]),
        (["limits", "create", "x", "three"], 2, ["LIMIT='three' is not a whole number"]),
        (["limits", "create", "a/b", "--limit", "1"], 2, ["name='a/b' is not a usable name"]),
        (
            ["limits", "create", "--tag", "db", "2", "--slot-decay-per-sec", "1"],
            2,
            ["--slot-decay-per-sec cannot be combined with --tag"],
        ),
        (["limits", "delete"], 2, ["Give either NAME or --tag TAG"]),
        (["limits", "delete", "nope"], 1, ["no concurrency limit named 'nope'"]),
        (["artifacts", "inspect", "nope"], 1, ["No artifact has the id or key ARTIFACT='nope'"]),
        (["artifacts", "ls", "--run", "nope"], 1, ["No flow run matches RUN='nope'"]),
        (["events", "ls", "--limit", "-1"], 2, ["Invalid value for '--limit'"]),
    ],
)
def test_bad_input(
    wf_process: WfProcess, store_copy: Path, args: list[str], code: int, phrases: list[str]
) -> None:
    result = wf_process(*args, store=store_copy)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_help_lists_the_new_groups(wf_run: Wf) -> None:
    listed = wf_run("--help", store=None).stdout
    for group in ("artifacts", "assets", "events", "limits"):
        assert re.search(rf"^  {group} +\S", listed, re.MULTILINE), listed
