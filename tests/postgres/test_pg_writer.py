"""The PostgreSQL writer's fast paths on a real server: a due buffer is written by the
committer thread while the recording thread goes on, and the staging tables are emptied
(and vacuumed) between flushes without losing or repeating a row."""

from __future__ import annotations

import threading

import pytest

from wfkit.stores import open_store
from wfkit.testing.store_conformance import finished, record_task


def _store(url: str, **options: object):  # noqa: ANN202
    from wfkit.stores.postgres import PostgresStore  # (psycopg: only once the server runs)

    return PostgresStore(url, **options)  # type: ignore[arg-type]


def _stored_task_runs(url: str) -> list[str]:
    with open_store(url + "?mode=ro") as reader:
        return [run.id for run in reader.task_runs()]


def test_a_due_buffer_is_handed_to_the_committer_thread(fresh_url: str) -> None:
    with _store(fresh_url, commit_interval=60.0) as store:
        writer = store._w
        record_task(store, finished(), "t1")
        # While this thread holds the connection nobody can write: what flush_due does on the
        # recording thread is to hand the buffer over, not to write it (or wait to).
        with writer.db_lock:
            writer.flush_due(blocking=False)
            assert writer.pending == 3
        assert _wait_for(lambda: _stored_task_runs(fresh_url) == ["t1"])
        assert writer.pending == 0


def test_a_buffer_far_ahead_is_written_on_the_recording_thread(fresh_url: str) -> None:
    with _store(fresh_url, commit_interval=60.0) as store:
        record_task(store, finished(), "t1")
        store._w.flush_due(blocking=True)  # (what add does past ten times the flush size)
        assert _stored_task_runs(fresh_url) == ["t1"]


def test_a_commit_interval_of_0_commits_each_record_before_recording_goes_on(
    fresh_url: str,
) -> None:
    with _store(fresh_url, commit_interval=0.0) as store:
        with store._w.db_lock:  # (the committer cannot write meanwhile: this thread must)
            record_task(store, finished(), "t1")
            assert store._w.pending == 0
            assert _stored_task_runs(fresh_url) == ["t1"]  # (a SIGKILL now would lose none)


def test_flushes_in_a_row_store_each_state_once_across_vacuums(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wfkit.stores._pg_writer as pg_writer  # (psycopg: only once the server runs)

    # Vacuum the staging tables before nearly every flush: the rows a flush staged must be
    # gone from them (else the next flush writes them again), and VACUUM must run outside
    # the flush's transaction.
    monkeypatch.setattr(pg_writer, "_VACUUM_ROWS", 1)
    with _store(fresh_url) as store:
        for i in range(6):
            record_task(store, finished(10 * i), f"t{i}")
            store.flush()
        runs = store.task_runs()
    assert sorted(run.id for run in runs) == [f"t{i}" for i in range(6)]
    assert {tuple(run.state_names) for run in runs} == {("Pending", "Running", "Completed")}


def _wait_for(condition: object, seconds: float = 30.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (real time: a thread works)."""
    done = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if condition():  # type: ignore[operator]
            return True
        done.wait(0.05)
    return False
