"""Run the wfkit benchmark and print one JSON document on stdout (progress goes to stderr).

    python benchmarks/run.py [--quick] [--repeat N] [--prefect-python PATH] [--only NAME,...]

Every figure is measured beside the same work in plain Python, in the same run, and (with
``--prefect-python``, the interpreter of a separate virtualenv that has Prefect 3 installed)
beside Prefect. Each figure reports the median and all samples, the ratio wfkit / plain, the
target from the benchmark issue and whether the median meets it. Every workload verifies its
outputs (results, recorded runs and their state histories); a figure whose checks fail never
meets its target, and the command then exits with status 1.

Workloads run in subprocesses, each with a fresh ``WFKIT_HOME`` (Prefect: ``PREFECT_HOME``)
in a temporary directory; the first flow call also runs in wfkit's default configuration (no
``WFKIT_*`` variable, ``HOME`` a fresh directory). These are benchmarks: nothing here is a
timed assertion.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import median, parse_result, perf  # noqa: E402

RETRIED_3 = [
    "Pending", "Running",
    "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying",
    "Completed",
]  # fmt: skip


FIRST_CALL_PLAIN_WHAT = (
    "call the function, then create a SQLite file and record the run and its 3 states with "
    "sqlite3 (sqlite3 import included)"
)


@dataclasses.dataclass(frozen=True)
class Figure:
    name: str
    title: str
    unit: str
    group: str
    plain: str  # what the plain-Python baseline does
    target_max: float | None = None
    target_text: str | None = None
    prefect: str | None = None  # how Prefect's figure is measured (None: not measured)


FIGURES = [
    Figure(
        name="import_wfkit",
        title='`python -c "import wfkit"`, whole process, wall',
        unit="ms",
        group="import",
        plain='`python -c "pass"`, whole process, wall',
        target_max=120,
        target_text="<= 120 ms",
        prefect='`python -c "import prefect"`',
    ),
    Figure(
        name="import_peak_rss",
        title='`python -c "import wfkit"`, peak RSS of the process',
        unit="MiB",
        group="import",
        plain='`python -c "pass"`, peak RSS',
        target_max=None,
        target_text=None,
        prefect='`python -c "import prefect"`',
    ),
    Figure(
        name="first_flow_call",
        title="first flow call in a fresh process, default configuration: no WFKIT_* variable, HOME a fresh directory, the store file created at $HOME/.wfkit/wfkit.db (perf_counter around the call, inside the process)",
        unit="ms",
        group="first_call",
        plain=FIRST_CALL_PLAIN_WHAT,
        target_max=50,
        target_text="<= 50 ms",
        prefect="cold: fresh PREFECT_HOME, starts a temporary server",
    ),
    Figure(
        name="first_flow_call_wfkit_home",
        title="the same first flow call with WFKIT_HOME set to a fresh directory (a set WFKIT_* variable makes wfkit load and validate its settings with pydantic-settings)",
        unit="ms",
        group="first_call",
        plain=FIRST_CALL_PLAIN_WHAT,
    ),
    Figure(
        name="first_flow_call_process",
        title="fresh process, default configuration: import, define a flow, first call, exit; whole process wall",
        unit="ms",
        group="first_call",
        plain="the same plain script, whole process wall",
        target_max=None,
        target_text=None,
        prefect="the same script with prefect",
    ),
    Figure(
        name="empty_flow_call_warm_sqlite",
        title="empty flow call, warm, SQLite store, per call",
        unit="us",
        group="empty_flow",
        plain="call an empty function",
        target_max=300,
        target_text="<= 300 us",
        prefect="warm (same process as a first call), its default local mode",
    ),
    Figure(
        name="sequential_task_memory",
        title="sequential trivial task inside a flow, per task, in-memory store",
        unit="us",
        group="seq_memory",
        plain="call a trivial function in a loop",
        target_max=15,
        target_text="<= 15 us",
    ),
    Figure(
        name="sequential_task_sqlite",
        title="sequential trivial task inside a flow, per task, SQLite store",
        unit="us",
        group="seq_sqlite",
        plain="call a trivial function in a loop",
        target_max=30,
        target_text="<= 30 us",
        prefect="its default store, fewer tasks, timed inside the flow body",
    ),
    Figure(
        name="task_map_10k",
        title="task.map over 10,000 items + results, thread pool, per task",
        unit="us",
        group="map",
        plain="ThreadPoolExecutor().map over the same items + results",
        target_max=100,
        target_text="<= 100 us",
        prefect="fewer items, timed inside the flow body",
    ),
    Figure(
        name="cache_hit_sqlite",
        title="cache hit, per call, SQLite store",
        unit="us",
        group="cache",
        plain="functools.cache hit",
        target_max=40,
        target_text="<= 40 us",
        prefect="cache_policy=INPUTS, fewer calls, timed inside the flow body",
    ),
    Figure(
        name="flow_100k_peak_rss",
        title="flow of 100,000 sequential tasks, SQLite: peak RSS",
        unit="MiB",
        group="flow_rss",
        plain="the same loop of plain calls in a fresh process (wfkit never imported)",
        target_max=200,
        target_text="<= 200 MiB",
    ),
    Figure(
        name="flow_100k_rss_growth_per_10k",
        title="flow of 100,000 sequential tasks, SQLite: RSS growth per extra 10k tasks (least-squares slope of RSS sampled every 10k tasks)",
        unit="MiB",
        group="flow_rss",
        plain="the same loop of plain calls",
        target_max=5,
        target_text="<= 5 MiB",
    ),
    Figure(
        name="store_size_per_task_run",
        title="store size per recorded task run (3 states), SQLite",
        unit="bytes",
        group="store_size",
        plain="a minimal hand-written SQLite schema holding the same runs and states",
        target_max=1500,
        target_text="<= 1.5 KB (1500 bytes)",
        prefect="approximate: growth of prefect.db(+wal) while its server runs",
    ),
    Figure(
        name="harness_entry",
        title="entering the test harness: `with harness(): pass` (freeze=True, memory store), per entry",
        unit="ms",
        group="harness",
        plain='mock.patch("time.sleep") + freezegun.freeze_time() + a dict',
        target_max=2,
        target_text="<= 2 ms",
        prefect="`with prefect_test_harness(): pass`",
    ),
    Figure(
        name="harness_entry_nofreeze",
        title="entering the test harness: `with harness(freeze=False): pass`, per entry",
        unit="ms",
        group="harness",
        plain='mock.patch("time.sleep") + a dict',
        target_max=2,
        target_text="<= 2 ms",
    ),
    Figure(
        name="retry_test_in_process",
        title="a test whose task fails 3 times and retries with 60 s delays, under harness() (entry, run, assert_states), wall per test",
        unit="ms",
        group="retry",
        plain="the same retry loop with time.sleep mocked",
        target_max=20,
        target_text="<= 20 ms",
        prefect="task retries=2, retry_delay_seconds=2: real sleeps (2x2 s), warm temporary server",
    ),
    Figure(
        name="retry_test_pytest",
        title="the same test as a pytest file: `python -m pytest -p no:cacheprovider -q` wall minus an empty-test run's wall",
        unit="ms",
        group="retry_pytest",
        plain="the plain test file (time.sleep mocked), minus the same empty-test run",
        target_max=20,
        target_text="<= 20 ms",
    ),
    Figure(
        name="retry_test_pytest_first",
        title="the same test's own duration under pytest (setup + call + teardown, timed by a conftest hook), as the first test of its session: includes what the session loads for the harness (freezegun, asyncio) and the engine's first run",
        unit="ms",
        group="retry_pytest",
        plain="the plain test's own duration, first of its session",
    ),
    Figure(
        name="retry_test_pytest_next",
        title="the same test's own duration under pytest, as the second such test of its session",
        unit="ms",
        group="retry_pytest",
        plain="the plain test's own duration, second of its session",
    ),
]
BY_NAME = {f.name: f for f in FIGURES}
GROUPS = list(dict.fromkeys(f.group for f in FIGURES))


def log(msg: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# -- subprocesses -----------------------------------------------------------------------------
@dataclasses.dataclass
class Proc:
    rc: int
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool


class Runner:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self._n = 0

    def fresh_dir(self, prefix: str) -> Path:
        self._n += 1
        d = self.root / f"{prefix}-{self._n:03d}"
        d.mkdir()
        return d

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WFKIT_", "PREFECT_", "PYTHON", "PYTEST_", "COV_"))
        }
        env.update(extra)
        return env

    def run(self, cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> Proc:
        """Run and wait; wall time from just before the spawn to the reaped exit."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            t = perf()
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                start_new_session=True,
            )  # fmt: skip
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                _, status = os.waitpid(proc.pid, 0)
            finally:
                timer.cancel()
            wall = perf() - t
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            return Proc(proc.returncode, out.read(), err.read(), wall, timed_out.is_set())

    def worker(
        self, workload: str, params: dict[str, Any], *, prefect: bool = False, timeout: float = 1800
    ) -> dict[str, Any]:
        """Run a workload of _workloads.py (or _prefect_workloads.py) in a fresh process."""
        home = self.fresh_dir(f"{'prefect' if prefect else 'wfkit'}-{workload}")
        if prefect:
            python, script = self.args.prefect_python, HERE / "_prefect_workloads.py"
            env = self.env(PREFECT_HOME=str(home))
        else:
            python, script = self.args.python, HERE / "_workloads.py"
            env = self.env(WFKIT_HOME=str(home))
        p = self.run([python, str(script), workload, json.dumps(params)], env, home, timeout)
        result = parse_result(p.stdout)
        if p.rc != 0 or result is None:
            return {
                "status": "error",
                "reason": f"{'timed out' if p.timed_out else f'exit status {p.rc}'}; "
                f"stderr ends: {p.stderr[-1500:]}",
            }
        result.setdefault("status", "ok")
        if result["status"] == "error":
            result["reason"] = f"{result.get('reason')}; stderr ends: {p.stderr[-1500:]}"
        return result


# -- result assembly --------------------------------------------------------------------------
class Results:
    def __init__(self, selected: list[str], with_prefect: bool) -> None:
        self.selected = selected
        self.with_prefect = with_prefect
        self.figures: dict[str, dict[str, Any]] = {}
        self.prefect: dict[str, dict[str, Any]] = {}

    def put(
        self,
        name: str,
        *,
        wfkit: list[float] | None = None,
        plain: list[float] | None = None,
        checks: dict[str, Any] | None = None,
        n: Any = None,
        details: dict[str, Any] | None = None,
        status: str = "ok",
        reason: str | None = None,
        plain_details: dict[str, Any] | None = None,
    ) -> None:
        if name not in self.selected:
            return
        fig = BY_NAME[name]
        wf_med, plain_med = median(wfkit or []), median(plain or [])
        checks = checks or {}
        verified = checks.get("verified") if status == "ok" else None
        if status == "error":
            verified = False
        entry: dict[str, Any] = {
            "name": name,
            "title": fig.title,
            "unit": fig.unit,
            "status": status,
        }
        if reason:
            entry["reason"] = reason
        if status == "ok":
            entry["wfkit"] = {"median": wf_med, "samples": wfkit}
            entry["plain"] = {"median": plain_med, "samples": plain, "what": fig.plain}
            if plain_details:
                entry["plain"]["details"] = plain_details
            entry["ratio"] = wf_med / plain_med if wf_med is not None and plain_med else None
        entry["target"] = (
            {"max": fig.target_max, "unit": fig.unit, "text": fig.target_text}
            if fig.target_max is not None
            else None
        )
        if fig.target_max is None or status == "not_available":
            entry["meets_target"] = None
        else:
            entry["meets_target"] = bool(
                status == "ok" and verified and wf_med is not None and wf_med <= fig.target_max
            )
        entry["verified"] = verified
        if checks:
            entry["checks"] = checks.get("checks", [])
            if checks.get("failed_checks"):
                entry["failed_checks"] = checks["failed_checks"]
        if n is not None:
            entry["n"] = n
        if details:
            entry["details"] = details
        self.figures[name] = entry
        self._progress(entry)

    def put_error(self, names: list[str], reason: str) -> None:
        for name in names:
            self.put(name, status="error", reason=reason)

    def put_prefect(self, name: str, value: dict[str, Any]) -> None:
        if name in self.selected:
            self.prefect[name] = value

    def _progress(self, e: dict[str, Any]) -> None:
        if e["status"] != "ok":
            log(f"  {e['name']}: {e['status']} ({str(e.get('reason'))[:300]})")
            return
        wf, pl = e["wfkit"]["median"], e["plain"]["median"]
        log(
            f"  {e['name']}: wfkit {_fmt(wf)} {e['unit']}, plain {_fmt(pl)} {e['unit']}, "
            f"ratio {_fmt(e['ratio'])}, target {e['target']['text'] if e['target'] else '-'}, "
            f"meets {e['meets_target']}, verified {e['verified']}"
            + (f" FAILED CHECKS: {e.get('failed_checks')}" if e.get("failed_checks") else "")
        )

    def document(self) -> list[dict[str, Any]]:
        out = []
        for fig in FIGURES:
            if fig.name not in self.figures:
                continue
            entry = dict(self.figures[fig.name])
            if self.with_prefect:
                p = self.prefect.get(fig.name)
                if p is None:
                    p = {
                        "status": "not_measured",
                        "note": "no Prefect workload for this figure"
                        if fig.prefect is None
                        else "not measured in this run",
                    }
                else:
                    p = {**p, "how": fig.prefect}
                    wf = (entry.get("wfkit") or {}).get("median")
                    if p.get("median") is not None and wf:
                        p["prefect_over_wfkit"] = p["median"] / wf
                entry["prefect"] = p
            else:
                entry["prefect"] = None
            out.append(entry)
        return out


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def prefect_entry(
    result: dict[str, Any], samples: list[float], n: Any = None, details: Any = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": "ok",
        "median": median(samples),
        "samples": samples,
        "verified": result.get("verified"),
    }
    if result.get("failed_checks"):
        entry["failed_checks"] = result["failed_checks"]
    if n is not None:
        entry["n"] = n
    if details:
        entry["details"] = details
    return entry


# -- groups -----------------------------------------------------------------------------------
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
# Times each test's run protocol (setup, call, teardown) and writes them where asked.
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


def pytest_sessionfinish(session):
    path = os.environ.get("WF_BENCH_DURATIONS")
    if path:
        with open(path, "w") as out:
            json.dump(_durations, out)
"""


class Bench:
    def __init__(self, args: argparse.Namespace, runner: Runner, results: Results) -> None:
        self.a = args
        self.r = runner
        self.res = results
        self.q = args.quick
        self.repeat = args.repeat

    @property
    def prefect(self) -> bool:
        return bool(self.a.prefect_python)

    def sel(self, *names: str) -> bool:
        return any(n in self.res.selected for n in names)

    # import -----------------------------------------------------------------------------
    def g_import(self) -> None:
        cwd = self.r.fresh_dir("import")
        env = self.r.env(WFKIT_HOME=str(cwd))
        statements = {"plain": "pass", "wfkit": "import wfkit"}
        pythons = {"plain": self.a.python, "wfkit": self.a.python}
        if self.prefect:
            statements["prefect"] = "import prefect"
            pythons["prefect"] = self.a.prefect_python
        wall: dict[str, list[float]] = {k: [] for k in statements}
        rss: dict[str, list[float]] = {k: [] for k in statements}
        failures: list[str] = []
        for i in range(self.repeat + 1):  # the first round warms the disk cache and .pyc files
            for key, statement in statements.items():
                p = self.r.run([pythons[key], "-c", statement], env, cwd, timeout=120)
                if p.rc != 0:
                    failures.append(f"{key}: exit {p.rc}: {p.stderr[-500:]}")
                # Peak RSS from inside (VmHWM is reset by exec; a child's ru_maxrss is not),
                # in a separate run so that the timed command stays exactly the statement.
                m = self.r.run([pythons[key], "-c", statement + RSS_PROBE], env, cwd, 120)
                hwm = [ln for ln in m.stdout.splitlines() if ln.startswith("VmHWM:")]
                if m.rc != 0 or not hwm:
                    failures.append(f"{key} (peak RSS run): exit {m.rc}: {m.stderr[-500:]}")
                if i:
                    wall[key].append(p.wall_s * 1e3)
                    if hwm:
                        rss[key].append(int(hwm[0].split()[1]) / 1024)
        checks = {"checks": [], "failed_checks": list(failures)}
        where = self.r.run(
            [self.a.python, "-c", "import wfkit, sys; print(wfkit.__file__); print(sys.prefix)"],
            env, cwd, timeout=120,
        )  # fmt: skip
        lines = where.stdout.split("\n")
        location = lines[0].strip()
        src = REPO / "src" / "wfkit"
        if location and Path(location).resolve().is_relative_to(src):
            checks["checks"].append(f"imports this checkout's wfkit ({src})")
        else:
            checks["failed_checks"].append(f"wfkit imported from {location!r}, not {src}")
        if not failures:
            checks["checks"].append("every process exited 0")
        checks["verified"] = not checks["failed_checks"]
        details = {"python": self.a.python, "wfkit_file": location}
        self.res.put("import_wfkit", wfkit=wall["wfkit"], plain=wall["plain"], checks=checks,
                     details=details)  # fmt: skip
        self.res.put("import_peak_rss", wfkit=rss["wfkit"], plain=rss["plain"], checks=checks)
        if self.prefect:
            result = {"verified": not any(f.startswith("prefect") for f in failures)}
            self.res.put_prefect("import_wfkit", prefect_entry(result, wall["prefect"]))
            self.res.put_prefect("import_peak_rss", prefect_entry(result, rss["prefect"]))

    # first call -------------------------------------------------------------------------
    def g_first_call(self) -> None:
        scripts = self.r.fresh_dir("first-call-scripts")
        for name, text in (
            ("wfkit_first.py", FIRST_CALL_WFKIT),
            ("plain_first.py", FIRST_CALL_PLAIN),
            ("prefect_first.py", FIRST_CALL_PREFECT),
        ):
            (scripts / name).write_text(text)
        # wfkit runs the same script in two configurations: "wfkit" is the default one (no
        # WFKIT_* variable; HOME a fresh directory, so the store is $HOME/.wfkit/wfkit.db),
        # "wfkit_home" has WFKIT_HOME set (the store is $WFKIT_HOME/wfkit.db).
        kinds = ["plain"]
        if self.sel("first_flow_call", "first_flow_call_process"):
            kinds.append("wfkit")
        if self.sel("first_flow_call_wfkit_home"):
            kinds.append("wfkit_home")
        every = [*kinds, "prefect"]
        call: dict[str, list[float]] = {k: [] for k in every}
        wall: dict[str, list[float]] = {k: [] for k in every}
        inner: dict[str, list[dict[str, float]]] = {k: [] for k in every}
        passed: dict[str, list[str]] = {k: [] for k in every}
        failed: dict[str, list[str]] = {k: [] for k in every}

        def one(kind: str, count: bool) -> None:
            home = self.r.fresh_dir(f"first-{kind}")
            python = self.a.prefect_python if kind == "prefect" else self.a.python
            script = scripts / f"{'wfkit' if kind.startswith('wfkit') else kind}_first.py"
            var = {"prefect": "PREFECT_HOME", "wfkit_home": "WFKIT_HOME"}.get(kind, "HOME")
            p = self.r.run([python, str(script)], self.r.env(**{var: str(home)}), home, 600)
            out = parse_result(p.stdout)
            if p.rc != 0 or out is None:
                failed[kind].append(f"{kind}: exit {p.rc}: {p.stderr[-800:]}")
                return
            if out["result"] != 42:
                failed[kind].append(f"{kind}: result {out['result']!r} != 42")
            if kind.startswith("wfkit"):
                self._verify_first_call(kind, home, passed[kind], failed[kind])
            elif kind == "prefect":
                if not (home / "prefect.db").exists():
                    failed[kind].append("prefect: no prefect.db in PREFECT_HOME")
            elif not (home / "plain.db").exists():
                failed[kind].append("plain: no plain.db")
            if count:
                call[kind].append(out["call_s"] * 1e3)
                wall[kind].append(p.wall_s * 1e3)
                inner[kind].append(
                    {k[:-2] + "_ms": v * 1e3 for k, v in out.items() if k.endswith("_s")}
                )

        for kind in kinds:  # warm-up: disk cache, .pyc files
            one(kind, False)
        for _ in range(self.repeat):
            for kind in kinds:
                one(kind, True)
        if self.prefect:
            for _ in range(1 if self.q else min(3, self.repeat)):
                one("prefect", True)
        for kind, names in (
            ("wfkit", ["first_flow_call", "first_flow_call_process"]),
            ("wfkit_home", ["first_flow_call_wfkit_home"]),
        ):
            if kind not in kinds:
                continue
            bad = failed["plain"] + failed[kind]
            checks = {
                "checks": [*passed[kind], "script results"],
                "failed_checks": bad,
                "verified": not bad and bool(passed[kind]),
            }
            details = {"timings_inside_process_ms": inner[kind]}
            self.res.put(names[0], wfkit=call[kind], plain=call["plain"], checks=checks,
                         details=details)  # fmt: skip
            if len(names) > 1:
                self.res.put(names[1], wfkit=wall[kind], plain=wall["plain"], checks=checks)
        if self.prefect:
            pf = failed["prefect"]
            result = {"verified": not pf, "failed_checks": pf}
            self.res.put_prefect(
                "first_flow_call",
                prefect_entry(result, call["prefect"], details={
                    "timings_inside_process_ms": inner["prefect"]}),
            )  # fmt: skip
            self.res.put_prefect("first_flow_call_process", prefect_entry(result, wall["prefect"]))

    def _verify_first_call(
        self, kind: str, home: Path, passed: list[str], failed: list[str]
    ) -> None:
        """Check, in another process, that the run was recorded in the store file of
        ``kind``'s configuration."""
        db, where = (
            (home / "wfkit.db", "WFKIT_HOME")
            if kind == "wfkit_home"
            else (home / ".wfkit" / "wfkit.db", "$HOME/.wfkit (the default configuration)")
        )
        v = self.r.worker("first_call_verify", {"db": str(db), "where": where})
        for c in v.get("checks", []):
            if c not in passed:
                passed.append(c)
        failed.extend(f"{kind}: {c}" for c in v.get("failed_checks", []))
        if v.get("status") == "error":
            failed.append(f"{kind}: verification worker failed: {v.get('reason')}")

    # in-process workers -----------------------------------------------------------------
    def _from_worker(self, names: list[str], workload: str, params: dict[str, Any]) -> None:
        res = self.r.worker(workload, {**params, "repeat": self.repeat})
        if res["status"] != "ok":
            for name in names:
                self.res.put(name, status=res["status"], reason=res.get("reason"))
            return
        for name in names:
            fig = res["figures"].get(name)
            if fig is None:
                self.res.put(name, status="error", reason="the workload did not report it")
                continue
            self.res.put(name, wfkit=fig["wfkit"], plain=fig["plain"], checks=res,
                         n=fig.get("n"), details=fig.get("details"))  # fmt: skip

    def g_empty_flow(self) -> None:
        self._from_worker(
            ["empty_flow_call_warm_sqlite"], "empty_flow",
            {"n": 200 if self.q else 2000, "plain_n": 20_000 if self.q else 200_000, "warm": 20},
        )  # fmt: skip

    def g_seq_memory(self) -> None:
        self._from_worker(
            ["sequential_task_memory"], "sequential",
            {"store": "memory", "n": 1000 if self.q else 10_000,
             "plain_n": 10_000 if self.q else 200_000},
        )  # fmt: skip

    def g_seq_sqlite(self) -> None:
        self._from_worker(
            ["sequential_task_sqlite"], "sequential",
            {"store": "sqlite", "n": 1000 if self.q else 10_000,
             "plain_n": 10_000 if self.q else 200_000},
        )  # fmt: skip

    def g_map(self) -> None:
        self._from_worker(["task_map_10k"], "task_map", {"n": 1000 if self.q else 10_000})

    def g_cache(self) -> None:
        self._from_worker(
            ["cache_hit_sqlite"], "cache_hit",
            {"n": 500 if self.q else 5000, "plain_n": 20_000 if self.q else 200_000},
        )  # fmt: skip

    def g_store_size(self) -> None:
        self._from_worker(["store_size_per_task_run"], "store_size",
                          {"n": 1000 if self.q else 10_000})  # fmt: skip

    def g_harness(self) -> None:
        self._from_worker(["harness_entry", "harness_entry_nofreeze"], "harness",
                          {"n": 20 if self.q else 200})  # fmt: skip

    def g_retry(self) -> None:
        self._from_worker(["retry_test_in_process"], "retry", {"n": 5 if self.q else 20})

    # memory of a long flow ----------------------------------------------------------------
    def g_flow_rss(self) -> None:
        n, step = (10_000, 1000) if self.q else (100_000, 10_000)
        runs: dict[str, list[dict[str, Any]]] = {"plain": [], "wfkit": []}
        for _ in range(self.repeat):
            for mode in ("plain", "wfkit"):
                res = self.r.worker("flow_rss", {"n": n, "step": step, "mode": mode})
                if res["status"] != "ok":
                    self.res.put_error(["flow_100k_peak_rss", "flow_100k_rss_growth_per_10k"],
                                       f"{mode}: {res.get('reason')}")  # fmt: skip
                    return
                runs[mode].append(res)
        failed = sorted({f for r in runs["wfkit"] + runs["plain"] for f in r["failed_checks"]})
        passed = sorted({c for r in runs["wfkit"] for c in r["checks"]})
        checks = {"verified": not failed and bool(passed), "checks": passed,
                  "failed_checks": failed}  # fmt: skip
        last = runs["wfkit"][-1]
        details = {
            "tasks": n,
            "rss_sampled_every": step,
            "rss_mib_at_tasks_last_run": last["rss_mib_at"],
            "rss_after_import_mib": [r["rss_start_mib"] for r in runs["wfkit"]],
            "per_task_us": [r["per_task_us"] for r in runs["wfkit"]],
            "note": "in --quick mode the flow has 10,000 tasks" if self.q else None,
        }
        plain_details = {"rss_mib_at_tasks_last_run": runs["plain"][-1]["rss_mib_at"]}
        self.res.put(
            "flow_100k_peak_rss",
            wfkit=[r["peak_rss_mib"] for r in runs["wfkit"]],
            plain=[r["peak_rss_mib"] for r in runs["plain"]],
            checks=checks, n=n, details=details, plain_details=plain_details,
        )  # fmt: skip
        self.res.put(
            "flow_100k_rss_growth_per_10k",
            wfkit=[r["growth_mib_per_10k"] for r in runs["wfkit"]],
            plain=[r["growth_mib_per_10k"] for r in runs["plain"]],
            checks=checks, n=n, details={"rss_mib_at_tasks_last_run": last["rss_mib_at"]},
        )  # fmt: skip

    # the retry test under pytest ----------------------------------------------------------
    def g_retry_pytest(self) -> None:
        d = self.r.fresh_dir("pytest")
        (d / "pytest.ini").write_text("[pytest]\n")
        (d / "conftest.py").write_text(TIMING_CONFTEST)
        files = {
            "empty": TEST_EMPTY,
            "wfkit": TEST_WFKIT,
            "plain": TEST_PLAIN,
            "wfkit_twice": TEST_WFKIT_TWICE,
            "plain_twice": TEST_PLAIN_TWICE,
        }
        passed = {k: "2 passed" if k.endswith("_twice") else "1 passed" for k in files}
        for kind, text in files.items():
            (d / f"test_{kind}.py").write_text(text)
        timings = d / "durations.json"
        env = self.r.env(WFKIT_HOME=str(d / "home"), WF_BENCH_DURATIONS=str(timings))
        raw: dict[str, list[float]] = {k: [] for k in files}
        own: dict[str, list[float]] = {k: [] for k in ("wfkit_1", "wfkit_2", "plain_1", "plain_2")}
        failed: list[str] = []
        kinds = list(files)
        for i in range(self.repeat + 1):  # the first round is a warm-up
            shift = i % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:  # rotate the order: no position bias
                p = self.r.run(
                    [self.a.python, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                     f"test_{kind}.py"], env, d, timeout=150,
                )  # fmt: skip
                if p.rc != 0 or passed[kind] not in p.stdout:
                    why = "timed out (real sleeps?)" if p.timed_out else f"exit {p.rc}"
                    failed.append(f"{kind}: {why}: {p.stdout[-800:]} {p.stderr[-400:]}")
                if i:
                    raw[kind].append(p.wall_s * 1e3)
                    if kind.endswith("_twice") and timings.exists():
                        first, second = json.loads(timings.read_text()).values()
                        own[f"{kind[:-6]}_1"].append(first)
                        own[f"{kind[:-6]}_2"].append(second)

        def minus(a: str, b: str) -> list[float]:
            return [x - y for x, y in zip(raw[a], raw[b], strict=True)]

        wf, plain = minus("wfkit", "empty"), minus("plain", "empty")
        checks = {
            "verified": not failed,
            "checks": ["each pytest run exited 0 with all its tests passed"] if not failed else [],
            "failed_checks": failed,
        }
        details = {
            "raw_wall_ms": {
                "wfkit_test_run": raw["wfkit"],
                "empty_test_run": raw["empty"],
                "plain_test_run": raw["plain"],
                "medians": {k: median(v) for k, v in raw.items()},
            },
            "difference_of_medians_ms": {
                k: median(raw[k]) - median(raw["empty"])  # type: ignore[operator]
                for k in ("wfkit", "plain")
            },
            "note": "the difference of two ~0.4 s process walls: noisy on a shared machine",
        }
        self.res.put("retry_test_pytest", wfkit=wf, plain=plain, checks=checks, details=details)
        for name, n in (("retry_test_pytest_first", 1), ("retry_test_pytest_next", 2)):
            self.res.put(name, wfkit=own[f"wfkit_{n}"], plain=own[f"plain_{n}"], checks=checks)

    # Prefect ----------------------------------------------------------------------------
    def g_prefect_session(self) -> None:
        names = [
            "empty_flow_call_warm_sqlite", "sequential_task_sqlite", "store_size_per_task_run",
            "task_map_10k", "cache_hit_sqlite", "retry_test_in_process",
        ]  # fmt: skip
        wanted = [n for n in names if n in self.res.selected]
        if not wanted:
            return
        log(f"prefect session: {', '.join(wanted)}")
        params = {
            "figures": wanted,
            "repeat": self.repeat,
            "warm_calls": 2 if self.q else 3,
            "seq_n": 20 if self.q else 200,
            "map_n": 50 if self.q else 500,
            "cache_n": 20 if self.q else 100,
            "retries": 2,
            "retry_delay": 2,
            "retry_repeat": 1 if self.q else min(3, self.repeat),
        }
        res = self.r.worker("session", params, prefect=True)
        self._put_prefect(wanted, res)

    def g_prefect_harness(self) -> None:
        if "harness_entry" not in self.res.selected:
            return
        log("prefect harness")
        res = self.r.worker(
            "harness", {"repeat": 1 if self.q else min(3, self.repeat)}, prefect=True
        )
        self._put_prefect(["harness_entry"], res)

    def _put_prefect(self, names: list[str], res: dict[str, Any]) -> None:
        for name in names:
            if res["status"] != "ok":
                self.res.put_prefect(name, {"status": "error", "reason": res.get("reason")})
                continue
            fig = res["figures"].get(name)
            if fig is None:
                continue
            entry = prefect_entry(res, fig["samples"], fig.get("n"), fig.get("details"))
            self.res.put_prefect(name, entry)
            log(f"  prefect {name}: {_fmt(entry['median'])} {BY_NAME[name].unit}")


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Benchmark wfkit against plain Python (and Prefect 3); prints one JSON "
        "document on stdout.",
    )
    ap.add_argument("--quick", action="store_true", help="smaller N and 3 repeats by default")
    ap.add_argument("--repeat", type=int, default=None, help="repeats per figure (default 5; "
                    "--quick: 3); the median is reported")  # fmt: skip
    ap.add_argument("--prefect-python", default=None, metavar="PATH",
                    help="python of a separate virtualenv with prefect installed")  # fmt: skip
    ap.add_argument("--only", default=None, metavar="NAME,...",
                    help=f"only these figures: {', '.join(BY_NAME)}")  # fmt: skip
    ap.add_argument("--python", default=sys.executable, metavar="PATH",
                    help="interpreter that imports wfkit (default: this one)")  # fmt: skip
    ap.add_argument("--output", default=None, metavar="FILE",
                    help="also write the JSON document to FILE")  # fmt: skip
    ap.add_argument("--keep-temp", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            ap.error(f"unknown figure(s) {unknown}; known: {', '.join(BY_NAME)}")
        args.selected = [f.name for f in FIGURES if f.name in names]
    else:
        args.selected = [f.name for f in FIGURES]
    if args.prefect_python and not os.access(args.prefect_python, os.X_OK):
        ap.error(f"--prefect-python {args.prefect_python!r} is not an executable")
    return args


def environment(args: argparse.Namespace) -> dict[str, Any]:
    def out(cmd: list[str]) -> str | None:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
            return p.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    try:
        with open(args.python, "rb") as f:
            is_script = f.read(2) == b"#!"
    except OSError:
        is_script = None
    dirty = out(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"])
    info: dict[str, Any] = {
        "python": args.python,
        "python_is_a_script_shim": is_script,
        "python_version": out([args.python, "-c", "import sys; print(sys.version.split()[0])"]),
        "wfkit_version": out([args.python, "-c", "import wfkit; print(wfkit.__version__)"]),
        "git_commit": out(["git", "rev-parse", "--short", "HEAD"]),
        "src_modified_files": len(dirty.splitlines()) if dirty else 0,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if args.prefect_python:
        info["prefect_python"] = args.prefect_python
        info["prefect_version"] = out(
            [args.prefect_python, "-c", "import prefect; print(prefect.__version__)"]
        )
    return info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    t0 = perf()
    env_info = environment(args)
    if env_info.get("python_is_a_script_shim"):
        log(f"warning: {args.python} is a script (a shim?): process timings include it")
    if args.prefect_python and not env_info.get("prefect_version"):
        log(f"warning: {args.prefect_python} cannot import prefect; Prefect figures will fail")
    root = Path(tempfile.mkdtemp(prefix="wfkit-bench-"))
    results = Results(args.selected, bool(args.prefect_python))
    bench = Bench(args, Runner(args, root), results)
    try:
        for group in GROUPS:
            names = [f.name for f in FIGURES if f.group == group and f.name in args.selected]
            if not names:
                continue
            log(f"{group}: {', '.join(names)}")
            try:
                getattr(bench, f"g_{group}")()
            except Exception as exc:  # a broken group must not hide the others
                import traceback

                traceback.print_exc()
                results.put_error(names, f"{type(exc).__name__}: {exc}")
        if args.prefect_python:
            bench.g_prefect_session()
            bench.g_prefect_harness()
    finally:
        if args.keep_temp:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    figures = results.document()
    with_target = [f for f in figures if f["meets_target"] is not None]
    summary = {
        "figures": len(figures),
        "with_target": len(with_target),
        "meeting_target": [f["name"] for f in with_target if f["meets_target"]],
        "missing_target": [f["name"] for f in with_target if not f["meets_target"]],
        "not_available": [f["name"] for f in figures if f["status"] == "not_available"],
        "errors": [f["name"] for f in figures if f["status"] == "error"],
        "unverified": [f["name"] for f in figures if f["verified"] is False],
    }
    document = {
        "benchmark": "wfkit",
        "command": " ".join(
            ["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(perf() - t0, 1),
        "quick": args.quick,
        "repeat": args.repeat,
        "statistic": "median of repeats; samples listed",
        "environment": {
            **env_info,
            "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "verified": not summary["unverified"] and not summary["errors"],
        "summary": summary,
        "figures": figures,
    }
    text = json.dumps(document, indent=2)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n")
    log(
        f"done in {document['duration_s']} s: {len(summary['meeting_target'])}/"
        f"{len(with_target)} targets met; missing: {', '.join(summary['missing_target']) or '-'}"
        f"; not available: {', '.join(summary['not_available']) or '-'}"
    )
    return 0 if document["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
