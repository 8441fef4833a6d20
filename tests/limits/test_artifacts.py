"""Artifacts as Prefect's artifacts page (docs/v3/how-to-guides/workflows/artifacts.mdx)
uses them: created in tasks and flows, stored with their run, versioned by key, read back
with Artifact.get and asserted on with h.artifacts()."""

from __future__ import annotations

import math

import pytest

from wfkit import flow, task
from wfkit.artifacts import (
    Artifact,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    list_artifacts,
    read_artifact,
    update_progress_artifact,
)
from wfkit.concurrency import create_limit, list_limits
from wfkit.concurrency.sync import concurrency
from wfkit.context import use_runtime
from wfkit.events import emit_event, list_events
from wfkit.exceptions import ConfigurationError, StoreError


def test_artifacts_are_stored_with_the_run_that_created_them(h):
    @task
    def report():
        create_markdown_artifact("# Sales\nUp **5%**", key="sales-report", description="Q1")
        return 1

    @flow
    def pipeline():
        create_link_artifact("https://example.com/data.csv", "the data", key="data-link")
        return report()

    pipeline()
    task_run, flow_run = h.task_run(report), h.flow_run(pipeline)
    (markdown,) = h.artifacts(run=task_run)
    assert (markdown.type, markdown.key, markdown.description) == ("markdown", "sales-report", "Q1")
    assert markdown.data == "# Sales\nUp **5%**"
    assert (markdown.task_run_id, markdown.flow_run_id) == (task_run.id, flow_run.id)
    assert [a.key for a in h.artifacts(run=pipeline)] == ["data-link", "sales-report"]
    assert h.artifacts(run=pipeline)[0].data == "[the data](https://example.com/data.csv)"
    assert markdown.created == h.clock.now()


def test_a_key_keeps_every_version_and_get_returns_the_latest(h):
    @flow
    def nightly(n):
        create_markdown_artifact(f"run {n}", key="nightly")

    for n in range(3):
        nightly(n)
        h.clock.advance(60)

    assert Artifact.get("nightly").data == "run 2"
    assert [a.data for a in h.artifacts(key="nightly")] == ["run 0", "run 1", "run 2"]
    assert Artifact.get("never-made") is None


def test_tables_in_each_shape(h):
    create_table_artifact([{"a": 1, "b": 2.5}, {"a": 3, "b": math.nan}], key="dicts")
    create_table_artifact([[1, "x"], [2, "y"]], key="lists")
    create_table_artifact({"a": [1, 2], "b": ["x", "y"]}, key="columns")

    assert Artifact.get("dicts").data == [{"a": 1, "b": 2.5}, {"a": 3, "b": None}]
    assert Artifact.get("lists").data == [[1, "x"], [2, "y"]]
    assert Artifact.get("columns").data == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert {a.type for a in h.artifacts()} == {"table"}


def test_progress_moves_and_an_image_is_kept_by_url(h):
    @task
    def crunch():
        pid = create_progress_artifact(0.0, key="crunching")
        for done in (25, 50, 100):
            update_progress_artifact(pid, done)
        create_image_artifact("https://example.com/chart.png", key="chart")
        return pid

    @flow
    def main():
        return crunch()

    pid = main()
    progress = Artifact.get("crunching")
    assert progress.id == str(pid) and progress.type == "progress" and progress.data == 100.0
    assert len(h.artifacts(key="crunching")) == 1  # updated in place, not a new version
    assert Artifact.get("chart").data == "https://example.com/chart.png"


def test_artifacts_outside_any_run_belong_to_no_run(h):
    create_markdown_artifact("loose", key="loose")
    found = Artifact.get("loose")
    assert found.flow_run_id is None and found.task_run_id is None


@pytest.mark.parametrize("key", ["Sales", "sales report", "sales_report", "", "ü"])
def test_a_key_with_capitals_spaces_or_other_characters_is_refused(h, key):
    with pytest.raises(ConfigurationError, match=f"key={key!r}.*lowercase letters, digits"):
        create_markdown_artifact("x", key=key)
    assert h.artifacts() == []


@pytest.mark.parametrize(
    "table",
    [[[1, 2], [3]], {"a": [1, 2], "b": [3]}, "a,b", [{"a": 1}, [1]], [[object()]]],
)
def test_a_ragged_or_shapeless_table_is_refused(h, table):
    with pytest.raises(ConfigurationError, match="table"):
        create_table_artifact(table)
    assert h.artifacts() == []


@pytest.mark.parametrize("progress", [-1, 100.5, math.nan, "50", True])
def test_progress_outside_0_to_100_is_refused(h, progress):
    with pytest.raises(ConfigurationError, match="progress="):
        create_progress_artifact(progress)
    pid = create_progress_artifact(10)
    with pytest.raises(ConfigurationError, match="progress="):
        update_progress_artifact(pid, progress)
    assert Artifact.get("x") is None and h.artifacts()[0].data == 10


def test_updating_what_is_not_a_progress_artifact_is_refused(h):
    md = create_markdown_artifact("x")
    with pytest.raises(ConfigurationError, match="names no progress artifact"):
        update_progress_artifact(md, 50)


def test_artifacts_are_listed_and_read_by_id_for_the_cli(h):
    @flow
    def main():
        return create_markdown_artifact("a", key="k"), create_markdown_artifact("b")

    first, second = main()
    run_id = h.flow_run(main).id
    assert [a.id for a in list_artifacts()] == [str(first), str(second)]
    assert [a.id for a in list_artifacts(key="k")] == [str(first)]
    assert [a.id for a in list_artifacts(run_id=run_id)] == [str(first), str(second)]
    assert read_artifact(second).data == "b" and read_artifact(str(first)).key == "k"
    assert read_artifact("no-such-id") is None


def test_a_read_only_store_reads_limits_artifacts_and_events(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with use_runtime(store=url):
        create_limit("db", 1)
        create_markdown_artifact("kept", key="kept")
        emit_event("e", {"prefect.resource.id": "r"})
    with use_runtime(store=f"{url}?mode=ro"):
        assert [lim.name for lim in list_limits()] == ["db"]
        assert Artifact.get("kept").data == "kept"
        assert [e.event for e in list_events()] == ["e"]
        with pytest.raises(StoreError, match="read-only"):
            with concurrency("db"):
                pass  # pragma: no cover - never entered
        with pytest.raises(StoreError, match="read-only"):
            create_markdown_artifact("x")
