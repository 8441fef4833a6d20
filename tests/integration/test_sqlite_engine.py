"""The engine writing to the SQLite store: concurrency, durability at exit, bad files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from wfkit import flow, task
from wfkit.context import use_runtime
from wfkit.exceptions import StoreError
from wfkit.stores import open_store


def test_eight_threads_of_200_task_flows_lose_nothing(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'wf.db'}")

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def batch(offset: int) -> int:
        return sum(double(offset + i) for i in range(200))

    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            with use_runtime(store=store):
                assert batch(k * 1000) == 2 * sum(range(k * 1000, k * 1000 + 200))
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reopened = open_store(f"sqlite:///{tmp_path / 'wf.db'}")
    flow_runs = reopened.flow_runs()
    assert len(flow_runs) == 8
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in flow_runs)
    task_runs = reopened.task_runs()
    assert len(task_runs) == 1600
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in task_runs)
    by_flow = {r.id: 0 for r in flow_runs}
    for r in task_runs:
        by_flow[r.flow_run_id] += 1
    assert set(by_flow.values()) == {200}


def _run_script(code: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env
    )


def test_script_exiting_right_after_a_1000_task_flow_keeps_every_record(tmp_path):
    db = tmp_path / "exit.db"
    result = _run_script(
        """
        import os
        from wfkit import flow, task

        @task
        def one(i):
            return i

        @flow
        def thousand():
            return sum(one(i) for i in range(1000))

        print(thousand())
        os._exit(0)  # no interpreter clean-up at all: the call itself must have committed
        """,
        {"WFKIT_STORE": f"sqlite:///{db}", "WFKIT_LOGGING_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sum(range(1000)))
    store = open_store(f"sqlite:///{db}")
    (run,) = store.flow_runs()
    assert run.state_names == ["Pending", "Running", "Completed"]
    task_runs = store.task_runs(flow_run_id=run.id)
    assert len(task_runs) == 1000
    assert {tuple(r.state_names) for r in task_runs} == {("Pending", "Running", "Completed")}


def test_runs_record_their_owner(tmp_path):
    with use_runtime(store=f"sqlite:///{tmp_path / 'o.db'}") as rt:

        @flow
        def owned():
            return 1

        owned()
        (run,) = rt.store.flow_runs()
    assert run.pid == os.getpid()
    import socket

    assert run.host == socket.gethostname()


def test_default_store_is_sqlite_in_wfkit_home_and_owner_only(tmp_path):
    home = tmp_path / "home"
    result = _run_script(
        """
        from wfkit import flow
        from wfkit.stores import open_store

        @flow
        def hello():
            return "hi"

        hello()
        store = open_store()
        print(store.url)
        print(store.flow_runs()[-1].state_names)
        """,
        {"WFKIT_HOME": str(home), "WFKIT_LOGGING_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stderr
    url, history = result.stdout.strip().splitlines()
    assert url == f"sqlite:///{home / 'wfkit.db'}"
    assert history == "['Pending', 'Running', 'Completed']"
    assert (home / "wfkit.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "content",
    [b"this is not a database\n" * 50, b"SQLite format 3\x00" + b"\xff" * 2000],
    ids=["text", "bad-header"],
)
def test_flow_on_a_corrupt_default_store_fails_clearly_and_leaves_it_alone(tmp_path, content):
    home = tmp_path / "home"
    home.mkdir()
    db = home / "wfkit.db"
    db.write_bytes(content)
    result = _run_script(
        """
        from wfkit import flow
        from wfkit.exceptions import StoreError

        ran = []

        @flow
        def hello():
            ran.append(1)

        try:
            hello()
        except StoreError as exc:
            print("StoreError:", exc)
        print("ran" if ran else "not run")
        """,
        {"WFKIT_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    assert "StoreError:" in result.stdout
    assert str(db) in result.stdout
    assert result.stdout.strip().endswith("not run")
    assert db.read_bytes() == content


def test_corrupt_store_url_in_use_runtime_raises_store_error(tmp_path):
    db: Path = tmp_path / "junk.db"
    db.write_bytes(b"junk" * 100)
    with pytest.raises(StoreError):
        with use_runtime(store=f"sqlite:///{db}"):
            pass
    assert db.read_bytes() == b"junk" * 100


def test_open_store_without_url_is_the_store_runs_went_to(tmp_path):
    result = _run_script(
        """
        from wfkit import flow
        from wfkit.stores import open_store

        @flow
        def hello():
            return "hi"

        hello()
        store = open_store()
        print(store.url, [r.state_names for r in store.flow_runs()])
        print(open_store() is store, open_store("memory://") is store)
        """,
        {"WFKIT_STORE": "memory://", "WFKIT_LOGGING_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "memory:// [['Pending', 'Running', 'Completed']]",
        "True False",
    ]
