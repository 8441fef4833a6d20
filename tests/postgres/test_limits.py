"""Concurrency limits in one PostgreSQL store shared by processes that play several hosts
(``WFKIT_TEST_HOST``): never overbooked, a holder's slots kept while its heartbeat comes
(even outside any run) and freed once it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.postgres._hosts import host_env, poll
from tests.postgres._server import PgServer

from wfkit.concurrency import AcquireConcurrencySlotTimeoutError, create_limit, read_limit
from wfkit.concurrency.sync import concurrency
from wfkit.context import use_runtime

_HOLDER = textwrap.dedent(
    """
    import sys
    from wfkit.concurrency.sync import concurrency
    with concurrency("db"):
        print("held", flush=True)
        sys.stdin.readline()  # hold until told to go on (or killed)
    print("released", flush=True)
    """
)

_ROUNDS = textwrap.dedent(
    """
    import os, sys, threading
    from wfkit.concurrency.sync import concurrency
    log = sys.argv[1]
    for _ in range(int(sys.argv[2])):
        with concurrency("db", timeout_seconds=120):
            with open(log, "a") as f:
                f.write(f"+ {os.getpid()}\\n")
            threading.Event().wait(0.02)  # stay inside a while: an overlap would show
            with open(log, "a") as f:
                f.write(f"- {os.getpid()}\\n")
    """
)


_RACE = textwrap.dedent(
    """
    import sys, time
    from wfkit.stores import open_store
    with open_store() as store:
        store.read_limit("db")  # (connected before the start)
        print("ready", flush=True)
        sys.stdin.readline()  # all start at once
        granted = sum(
            store.acquire_slots(["db"], 1, time.time(), f"h{i}", True).granted
            for i in range(int(sys.argv[1]))
        )
    print(granted)
    """
)


@pytest.fixture
def limit_url(fresh_url: str) -> Iterator[str]:
    """A fresh database with the limit ``db`` of one slot."""
    with use_runtime(store=fresh_url):
        create_limit("db", 1)
    return fresh_url


def _holder(url: str, host: str, **env: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=host_env(url, host, **env),
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def _beats(server: PgServer, url: str, host: str) -> int:
    """How many heartbeats the owners of ``host`` sent."""
    with server.admin(url.rpartition("/")[2]) as conn:
        sql = "SELECT coalesce(max(beats), 0) FROM owners WHERE host = %s"
        return int(conn.execute(sql, (host,)).fetchone()[0])


def test_a_slot_held_on_another_host_is_not_granted_until_given_back(limit_url: str) -> None:
    proc = _holder(limit_url, "host-b")
    try:
        with use_runtime(store=limit_url):
            assert read_limit("db").active_slots == 1
            with pytest.raises(AcquireConcurrencySlotTimeoutError, match="'db'"):
                with concurrency("db", timeout_seconds=0.2):
                    pass  # pragma: no cover - never entered
            out, _ = proc.communicate("go\n", timeout=60)
            assert out == "released\n"
            with concurrency("db", timeout_seconds=60):
                assert read_limit("db").active_slots == 1
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_on_this_host_does_not_keep_its_slot(limit_url: str) -> None:
    proc = _holder(limit_url, "")  # (this host: judged by its pid, at once)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with use_runtime(store=limit_url):
        with concurrency("db", timeout_seconds=60):
            assert read_limit("db").active_slots == 1  # only this one: the dead lease is gone


def test_a_holder_on_another_host_keeps_its_slot_while_it_beats_outside_any_run(
    limit_url: str, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WFKIT_TEST_HOST", "host-a")
    proc = _holder(limit_url, "host-b", WFKIT_HEARTBEAT_INTERVAL="0.2")
    try:
        # Ten beats: well past three intervals, so a holder that did not beat would be gone.
        assert poll(lambda: _beats(pg_server, limit_url, "host-b") >= 10, 60), (
            "the holder does not beat"
        )
        with use_runtime(store=limit_url):
            with pytest.raises(AcquireConcurrencySlotTimeoutError, match="'db'"):
                with concurrency("db", timeout_seconds=0.5):
                    pass  # pragma: no cover - never entered
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with use_runtime(store=limit_url):  # silent for three intervals: its slot is freed
        with concurrency("db", timeout_seconds=60):
            assert read_limit("db").active_slots == 1


def test_processes_on_many_hosts_never_overbook_a_limit(limit_url: str, tmp_path: Path) -> None:
    with use_runtime(store=limit_url):
        create_limit("db", 2)
    log, processes, rounds = tmp_path / "inside.log", 4, 8
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _ROUNDS, str(log), str(rounds)],
            env=host_env(limit_url, f"host-{i}"),
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    errors = [child.communicate(timeout=300)[1] for child in children]
    assert [child.returncode for child in children] == [0] * processes, errors
    inside, most, entered = 0, 0, 0
    for line in log.read_text().splitlines():
        inside += 1 if line.startswith("+") else -1
        entered += line.startswith("+")
        most = max(most, inside)
    assert entered == processes * rounds
    assert 1 <= most <= 2  # never a third slot
    with use_runtime(store=limit_url):
        assert read_limit("db").active_slots == 0


def test_processes_asking_at_once_take_exactly_the_limit(limit_url: str) -> None:
    with use_runtime(store=limit_url):
        create_limit("db", 100)
    processes, asks = 4, 50
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(asks)],
            env=host_env(limit_url, f"host-{i}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    granted = [int(child.communicate(timeout=300)[0]) for child in children]
    assert sum(granted) == 100, granted  # every slot taken, none twice
    with use_runtime(store=limit_url):
        assert read_limit("db").active_slots == 100
