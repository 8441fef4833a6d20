"""Plain psycopg writing what a sequential wfkit task writes: the baseline of benchmarks/postgres.py.

Run as ``python _pg_plain.py MODE TASKS ENGINE_US`` with ``WFKIT_STORE`` naming a database
that holds wfkit's schema; prints the wall time per task in microseconds (JSON).

Each task is ``ENGINE_US`` of busy work on the main thread (standing in for the engine: the
issue's floor was measured with 13 µs), then one task run row (the 15 columns wfkit writes)
and its three state rows (Pending, Running, Completed). ``MODE``:

- ``copy``: a background thread wakes every 100 ms, takes the rows and writes them in one
  transaction: ``COPY`` the runs into ``task_runs``, read back their seqs, ``COPY`` the states.
  What a hand-written batching writer does, without wfkit's upsert (its runs are always new).
- ``transaction``: each task's rows in a transaction of their own, on the main thread
  (``INSERT ... RETURNING seq``, then the states in one pipelined ``executemany``).

Nothing here imports wfkit: it is what wfkit's writer is compared with.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from typing import Any

import psycopg

_RUN_COLUMNS = (
    "id, name, task_name, flow_run_id, parameters, tags, cache_key, upstream_ids, run_count, "
    "state_type, state_name, state_us, host, pid, owner"
)
_STATE_COLUMNS = "run_seq, type, name, at_us, message"
_FLOW_RUN_ID = str(uuid.uuid4())
_HOST, _PID = os.uname().nodename, os.getpid()


def _task(i: int, engine_us: float) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One task's rows, after ``engine_us`` of busy work."""
    until = time.perf_counter() + engine_us / 1e6
    while time.perf_counter() < until:
        pass
    run_id, now = str(uuid.uuid4()), time.time_ns() // 1000
    run = (
        run_id, f"step-{run_id[:3]}", "step", _FLOW_RUN_ID, f'{{"x": {i}}}', "[]", None, "[]",
        1, "COMPLETED", "Completed", now, _HOST, _PID, 0,
    )  # fmt: skip
    states = [(run_id, t, t.title(), now, None) for t in ("PENDING", "RUNNING", "COMPLETED")]
    return run, states


def _write_copy(conn: psycopg.Connection, runs: list[tuple[Any, ...]], states: list[Any]) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy(f"COPY task_runs ({_RUN_COLUMNS}) FROM STDIN") as copy:
            for run in runs:
                copy.write_row(run)
        cursor.execute(
            "SELECT id, seq FROM task_runs WHERE id = ANY(%s)", ([run[0] for run in runs],)
        )
        seqs = dict(cursor.fetchall())
        with cursor.copy(f"COPY task_run_states ({_STATE_COLUMNS}) FROM STDIN") as copy:
            for run_id, *state in states:
                copy.write_row((seqs[run_id], *state))


def copy_every_100ms(url: str, n: int, engine_us: float) -> float:
    """Seconds for ``n`` tasks, the last rows committed."""
    conn = psycopg.connect(url, autocommit=True)
    lock, stop = threading.Lock(), threading.Event()
    runs: list[tuple[Any, ...]] = []
    states: list[tuple[Any, ...]] = []

    def writer() -> None:
        nonlocal runs, states
        while True:
            stopping = stop.wait(0.1)
            with lock:
                batch, runs, states = (runs, states), [], []
            if batch[0]:
                _write_copy(conn, *batch)
            if stopping:
                return

    thread = threading.Thread(target=writer, daemon=True)
    start = time.perf_counter()
    thread.start()
    for i in range(n):
        run, task_states = _task(i, engine_us)
        with lock:
            runs.append(run)
            states.extend(task_states)
    stop.set()
    thread.join()
    return time.perf_counter() - start


def transaction_per_task(url: str, n: int, engine_us: float) -> float:
    """Seconds for ``n`` tasks, each committed on its own."""
    conn = psycopg.connect(url, autocommit=True)
    insert_run = (
        f"INSERT INTO task_runs ({_RUN_COLUMNS}) VALUES ({', '.join(['%s'] * 15)}) RETURNING seq"
    )
    insert_state = f"INSERT INTO task_run_states ({_STATE_COLUMNS}) VALUES (%s, %s, %s, %s, %s)"
    start = time.perf_counter()
    for i in range(n):
        run, states = _task(i, engine_us)
        with conn.transaction(), conn.cursor() as cursor:
            seq = cursor.execute(insert_run, run).fetchone()[0]  # type: ignore[index]
            cursor.executemany(insert_state, [(seq, *state[1:]) for state in states])
    return time.perf_counter() - start


def main() -> None:
    mode, n, engine_us = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    url = os.environ["WFKIT_STORE"]
    run = {"copy": copy_every_100ms, "transaction": transaction_per_task}[mode]
    print(json.dumps(run(url, n, engine_us) / n * 1e6))


if __name__ == "__main__":
    main()
