"""Cached results live in the run store: another process sees them; the serializer decides
the bytes; results that cannot be serialized are returned but not cached."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import wfkit
from wfkit import flow, task
from wfkit._engine.caching import MAC_SIZE
from wfkit.cache_policies import INPUTS, TASK_SOURCE
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import Harness, harness

from .conftest import Calls

SRC = Path(wfkit.__file__).resolve().parents[1]

JOB = """
import sys
from wfkit import flow, task
from wfkit.cache_policies import INPUTS, TASK_SOURCE

@task(cache_policy=INPUTS + TASK_SOURCE)
def expensive(x):
    print("BODY RAN", x, flush=True)
    return {"square": x * x}

@flow
def job(x):
    state = expensive(x, return_state=True)
    print("STATE", state.name, flush=True)
    print("RESULT", state.result(), flush=True)

if __name__ == "__main__":
    job(int(sys.argv[1]))
"""


def run_job(script: Path, db: Path, home: Path, x: int) -> str:
    env = {
        **os.environ,
        "WFKIT_STORE": f"sqlite:///{db}",
        "WFKIT_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script), str(x)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=script.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_second_process_gets_the_hit_from_the_sqlite_store(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(JOB))
    db, home = tmp_path / "c.db", tmp_path / "home"

    first = run_job(script, db, home, 7)
    assert "BODY RAN 7" in first
    assert "STATE Completed" in first
    assert "RESULT {'square': 49}" in first

    second = run_job(script, db, home, 7)
    assert "BODY RAN" not in second
    assert "STATE Cached" in second
    assert "RESULT {'square': 49}" in second

    third = run_job(script, db, home, 8)  # other inputs: a miss in a third process
    assert "BODY RAN 8" in third and "STATE Completed" in third

    store = SqliteStore(db)
    try:
        records = store.cache_records()
        assert sorted(pickle.loads(r.value[MAC_SIZE:])["square"] for r in records) == [49, 64]
        assert {r.task_name for r in records} == {"expensive"}
        runs = store.task_runs(task_name="expensive")
        assert [r.state.name for r in runs] == ["Completed", "Cached", "Completed"]
        assert runs[0].cache_key == runs[1].cache_key != runs[2].cache_key
    finally:
        store.close()


REFRESH = """
import sys
from wfkit import flow, task
from wfkit.cache_policies import INPUTS

@task(name="expensive", cache_policy=INPUTS, refresh_cache=True)
def expensive(x):
    return {"square": -1}

@flow
def job(x):
    expensive(x)

if __name__ == "__main__":
    job(int(sys.argv[1]))
"""


def test_hits_in_a_long_running_process_follow_another_processs_changes(
    tmp_path: Path, calls: Calls
) -> None:
    # One process keeps hitting a record while others refresh and delete it: every hit
    # after such a change sees it (the store may keep records it read, never stale ones).
    db, home = tmp_path / "c.db", tmp_path / "home"

    @task(name="expensive", cache_policy=INPUTS)
    def expensive(x: int) -> dict[str, int]:
        calls(x)
        return {"square": x * x}

    @flow
    def job(x: int) -> Any:
        return [expensive(x, return_state=True) for _ in range(2)]

    def states_and_results() -> list[tuple[str, Any]]:
        return [(s.name, s.result()) for s in job(7)]

    store = SqliteStore(db)
    try:
        with harness(store=store):
            assert states_and_results() == [
                ("Completed", {"square": 49}),
                ("Cached", {"square": 49}),
            ]
            script = tmp_path / "refresh.py"
            script.write_text(textwrap.dedent(REFRESH))
            run_job(script, db, home, 7)  # rewrites the record with another value
            assert states_and_results() == [("Cached", {"square": -1})] * 2
            (record,) = store.cache_records()
            script.write_text(
                "from wfkit.stores import open_store\n"
                f"assert open_store().delete_cache({record.key!r})\n"
            )
            run_job(script, db, home, 7)
            assert states_and_results() == [
                ("Completed", {"square": 49}),
                ("Cached", {"square": 49}),
            ]
            assert calls.args == [7, 7]
    finally:
        store.close()


# serializers -------------------------------------------------------------------------------
def test_pickle_is_the_default_serializer(h: Harness) -> None:
    @task(cache_policy=INPUTS)
    def make(x: int) -> Any:
        return {"x": x, "t": (1, 2), "s": {3}}

    value = make(1)
    (record,) = h.store.cache_records()
    assert record.serializer == "pickle"
    assert pickle.loads(record.value[MAC_SIZE:]) == value
    assert make(1) == {"x": 1, "t": (1, 2), "s": {3}}  # types survive the round trip


def test_json_serializer_stores_json(h: Harness) -> None:
    @task(cache_policy=INPUTS, result_serializer="json")
    def make(x: int) -> Any:
        return {"x": x, "items": [1, 2.5, "three", None, True]}

    assert make(1) == {"x": 1, "items": [1, 2.5, "three", None, True]}
    (record,) = h.store.cache_records()
    assert record.serializer == "json"
    assert json.loads(record.value[MAC_SIZE:].decode("utf-8")) == {
        "x": 1,
        "items": [1, 2.5, "three", None, True],
    }
    state = make(1, return_state=True)
    assert state.name == "Cached"
    assert state.result() == {"x": 1, "items": [1, 2.5, "three", None, True]}


def test_json_serializer_round_trips_through_json_types(h: Harness) -> None:
    @task(cache_policy=INPUTS, result_serializer="json")
    def make(x: int) -> Any:
        return (x, x)

    assert make(1) == (1, 1)  # the miss returns the body's own value
    assert make(1) == [1, 1]  # the hit returns what JSON stored


# results that cannot be serialized ---------------------------------------------------------
def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_an_unpicklable_result_is_returned_logged_and_not_cached(
    h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    lock = threading.Lock()

    @task(cache_policy=INPUTS)
    def make(x: int) -> Any:
        calls(x)
        return lock

    with caplog.at_level(logging.WARNING):
        assert make(1) is lock
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "cannot be serialized" in warnings[0] and "not cached" in warnings[0]
    assert h.store.cache_records() == []

    assert make(1) is lock  # no record: the body runs again
    assert calls.count == 2
    assert [r.state.name for r in h.task_runs(make)] == ["Completed", "Completed"]
    # The warning is also in the run's stored logs.
    first_run = h.task_runs(make)[0]
    assert any(
        "cannot be serialized" in entry.message and entry.level == logging.WARNING
        for entry in h.logs(first_run)
    )


def test_a_set_is_not_json_serializable(
    h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    @task(cache_policy=INPUTS, result_serializer="json")
    def make(x: int) -> Any:
        calls(x)
        return {x, x + 1}

    with caplog.at_level(logging.WARNING):
        assert make(1) == {1, 2}
        assert make(1) == {1, 2}
    assert calls.count == 2
    assert h.store.cache_records() == []
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert all("'json'" in w and "not cached" in w for w in warnings)


def test_an_unserializable_result_inside_a_flow_keeps_the_flow_completed(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    @task(cache_policy=INPUTS)
    def make(x: int) -> Any:
        return threading.Lock()

    @flow
    def pipeline() -> str:
        return type(make(1)).__name__

    with caplog.at_level(logging.WARNING):
        assert pipeline() == "lock"
    assert h.flow_run(pipeline).state.name == "Completed"
    assert h.task_run(make).state.name == "Completed"


def test_persist_result_false_turns_caching_off_as_in_prefect(
    h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    # Prefect 3 ignores cache_policy when persist_result=False (a result that is not
    # persisted cannot be restored), and says so; wfkit does the same.
    with caplog.at_level(logging.WARNING, logger="wfkit"):

        @task(cache_policy=INPUTS + TASK_SOURCE, persist_result=False)
        def make(x: int) -> int:
            return calls(x)

    assert "persist_result=False" in caplog.text and "make" in caplog.text
    make(1)
    make(1)
    assert calls.count == 2  # the body ran both times
    assert h.cache_hits(make) == 0
    assert all(run.cache_key is None for run in h.task_runs(make))
