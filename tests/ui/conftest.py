"""Fixtures for the web page's tests: a SQLite store filled once by real flow runs (on a fake
clock starting at ``START``), with a run whose process was killed (Crashed), and a Starlette
``TestClient`` over that store opened read-only, as ``wf ui`` opens it.

- ``ui_store``: the store's path (shared: the tests only read);
- ``client``: a ``TestClient`` of the app over it;
- ``runs``: the store's flow runs by name;
- ``wf_ui(*args, store=...)``: ``wf ui`` started in a subprocess on a free port (``.url``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the `ui` extra is not installed")

from starlette.testclient import TestClient  # noqa: E402

from wfkit import tags  # noqa: E402
from wfkit.exceptions import StoreError  # noqa: E402
from wfkit.stores.records import FlowRun  # noqa: E402
from wfkit.stores.sqlite import SqliteStore  # noqa: E402
from wfkit.testing import harness  # noqa: E402
from wfkit.ui import create_app  # noqa: E402

from ._flows import boom, evil, pipeline, wide  # noqa: E402

START = "2026-01-01T00:00:00Z"
ROOT = Path(__file__).resolve().parents[2]

DOOMED = textwrap.dedent(
    """
    import time
    from wfkit import flow, get_run_logger, task

    @task(task_run_name="stuck")
    def stuck():
        print("running", flush=True)
        time.sleep(120)

    @flow(flow_run_name="doomed")
    def doomed():
        get_run_logger().info("started")
        stuck()

    doomed()
    """
)


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that imports this worktree's wfkit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    env.update(extra)
    return env


def killed_run(path: Path) -> None:
    """Record a flow run whose process is killed while its task runs (both read back
    Crashed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", DOOMED],
        env=process_env(WFKIT_STORE=f"sqlite:///{path}", WFKIT_STORE_COMMIT_INTERVAL="0"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
        time.sleep(0.3)  # (real time: the commit window; the line above came after the write)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def fill(path: Path) -> None:
    """Record the runs every web page test reads."""
    with harness(start=START, store=SqliteStore(path)):
        with tags("nightly"):
            pipeline(3)
        evil()
        boom(return_state=True)
        wide(600)
    killed_run(path)


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui") / "runs.db"
    fill(path)
    return path


@pytest.fixture(scope="session")
def client(ui_store: Path) -> Iterator[TestClient]:
    store = SqliteStore.from_url(f"sqlite:///{ui_store}?mode=ro")
    with TestClient(create_app(store)) as test_client:
        yield test_client
    store.close()


@pytest.fixture(scope="session")
def runs(ui_store: Path) -> dict[str, FlowRun]:
    with SqliteStore(ui_store, read_only=True) as store:
        return {run.name: run for run in store.flow_runs()}


class WfUi:
    """``wf ui`` running in a subprocess on a free port, as a user starts it."""

    def __init__(self, store: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wfkit", "ui", "--store", f"sqlite:///{store}", *args],
            env=process_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()
        found = re.search(r"http://\S+/", self.banner)
        if found is None:
            self.stop()
            raise AssertionError(f"wf ui printed no URL: {self.banner!r} {self.proc.stderr}")
        self.url = found[0]

    def stop(self) -> str:
        """Stop the server (as Ctrl-C does); what it wrote on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


@pytest.fixture
def wf_ui(ui_store: Path) -> Iterator[Callable[..., WfUi]]:
    """``wf_ui(store=ui_store, *args)``: start ``wf ui --port 0`` on a store; stopped after."""
    started: list[WfUi] = []

    def start(*args: str, store: Path = ui_store) -> WfUi:
        server = WfUi(store, "--port", "0", *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for_run(store: Path, name: str) -> None:
    """Wait (real time, up to 30 s) until another process has recorded a run named so."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with SqliteStore(store, read_only=True) as reader:
                if reader.find_flow_runs(name):
                    return
        except StoreError:
            pass  # (not there yet, or its schema not written yet)
        time.sleep(0.1)
    raise AssertionError(f"no run named {name!r} appeared in {store}")
