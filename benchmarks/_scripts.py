"""The scripts and pytest files the benchmark writes and runs in fresh processes."""

from __future__ import annotations

RETRIED_3 = [
    "Pending", "Running",
    "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying",
    "Completed",
]  # fmt: skip


RSS_PROBE = "\nwith open('/proc/self/status') as f: print(f.read())"
FIRST_CALL_WFKIT = """\
import json, time
t0 = time.perf_counter()
from wfkit import flow
t1 = time.perf_counter()

@flow(name="bench-first")
def hello(x: int) -> int:
    return x + 1

t2 = time.perf_counter()
result = hello(41)
t3 = time.perf_counter()
print("BENCH-RESULT " + json.dumps(
    {"call_s": t3 - t2, "import_s": t1 - t0, "define_s": t2 - t1, "result": result}), flush=True)
"""
FIRST_CALL_PREFECT = FIRST_CALL_WFKIT.replace("from wfkit import", "from prefect import")
FIRST_CALL_PLAIN = """\
import json, time
t0 = time.perf_counter()
t1 = time.perf_counter()

def hello(x: int) -> int:
    return x + 1

t2 = time.perf_counter()
result = hello(41)
import sqlite3, uuid
from datetime import datetime, timezone
conn = sqlite3.connect("plain.db")  # in the working directory, a fresh one
conn.execute("PRAGMA journal_mode=WAL")
conn.executescript(
    "CREATE TABLE flow_run (id TEXT PRIMARY KEY, name TEXT, parameters TEXT, state TEXT);"
    "CREATE TABLE state (id INTEGER PRIMARY KEY, run_id TEXT, name TEXT, at TEXT);")
rid = str(uuid.uuid4())
with conn:
    conn.execute("INSERT INTO flow_run VALUES (?, ?, ?, ?)",
                 (rid, "hello", json.dumps({"x": 41}), "Completed"))
    for name in ("Pending", "Running", "Completed"):
        conn.execute("INSERT INTO state (run_id, name, at) VALUES (?, ?, ?)",
                     (rid, name, datetime.now(timezone.utc).isoformat()))
conn.close()
t3 = time.perf_counter()
print("BENCH-RESULT " + json.dumps(
    {"call_s": t3 - t2, "import_s": t1 - t0, "define_s": t2 - t1, "result": result}), flush=True)
"""

TEST_WFKIT = f"""\
from wfkit import task


@task(retries=3, retry_delay_seconds=60)
def fetch(source: dict) -> str:
    source["calls"] += 1
    if source["calls"] <= 3:
        raise ConnectionError("down")
    return "data"


def test_fetch_retries(wf_harness, wf_clock):
    assert fetch({{"calls": 0}}) == "data"
    wf_harness.assert_states(fetch, {RETRIED_3!r})
    assert wf_clock.sleeps == [60, 60, 60]
"""
TEST_WFKIT_TWICE = (
    TEST_WFKIT
    + """

def test_fetch_retries_again(wf_harness, wf_clock):
    test_fetch_retries(wf_harness, wf_clock)
"""
)
TEST_PLAIN = """\
import time
from unittest import mock


def fetch(source: dict) -> str:
    source["calls"] += 1
    if source["calls"] <= 3:
        raise ConnectionError("down")
    return "data"


def fetch_with_retries(source: dict, retries: int = 3, delay: float = 60) -> str:
    for attempt in range(retries + 1):
        try:
            return fetch(source)
        except ConnectionError:
            if attempt == retries:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def test_fetch_retries():
    with mock.patch("time.sleep") as sleep:
        assert fetch_with_retries({"calls": 0}) == "data"
    assert [c.args[0] for c in sleep.call_args_list] == [60, 60, 60]
"""
TEST_PLAIN_TWICE = (
    TEST_PLAIN
    + """

def test_fetch_retries_again():
    test_fetch_retries()
"""
)
TEST_EMPTY = "def test_empty():\n    pass\n"
# Times each test's run protocol (setup, call, teardown) and the collection's end (where the
# wfkit plugin warms the harness up), and writes them where asked.
TIMING_CONFTEST = """\
import json
import os
import time

import pytest

_durations = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _durations[item.name] = (time.perf_counter() - start) * 1e3


@pytest.hookimpl(wrapper=True)
def pytest_collection_finish(session):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _durations["<collection_finish>"] = (time.perf_counter() - start) * 1e3


def pytest_sessionfinish(session):
    path = os.environ.get("WF_BENCH_DURATIONS")
    if path:
        with open(path, "w") as out:
            json.dump(_durations, out)
"""

# A flow of N tasks (each ~0.5 ms of work), then the flow body idles; the child writes one
# byte to the pipe fd when the last task has finished. The benchmark kills it D ms later.
_CRASH_WORK = """\
def work():
    end = time.perf_counter() + 0.0005
    while time.perf_counter() < end:
        pass
"""
CRASH_WFKIT = (
    "import os, sys, time\nfrom wfkit import flow, task\n"
    + _CRASH_WORK
    + """
fd, n = int(sys.argv[1]), int(sys.argv[2])

@task(name="crash-step")
def step(i):
    work()
    return i

@flow(name="crash-flow")
def crash_flow():
    for i in range(n):
        step(i)
    os.write(fd, b"!")
    time.sleep(60)

crash_flow()
"""
)
CRASH_PLAIN = (
    "import os, sqlite3, sys, time\n"
    + _CRASH_WORK
    + """
fd, n = int(sys.argv[1]), int(sys.argv[2])
conn = sqlite3.connect(sys.argv[3], isolation_level=None)  # autocommit: a commit per task
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = NORMAL")
conn.execute("CREATE TABLE IF NOT EXISTS done (i INTEGER)")
for i in range(n):
    work()
    conn.execute("INSERT INTO done VALUES (?)", (i,))
os.write(fd, b"!")
time.sleep(60)
"""
)
