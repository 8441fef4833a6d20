"""The PostgreSQL store's speed, beside SQLite's, plain psycopg's and Prefect's, on a local
server over loopback.

Figures (each workload in a fresh process; medians of ``--repeat`` runs, with the samples):

- ``sequential_task_us``: a flow calling ``--tasks`` trivial tasks one after another, wall
  time per task, amortised (the flow call's own cost included); target <= 45 µs on
  PostgreSQL. Beside it, the same rows written by plain psycopg (``_pg_plain.py``: a
  background thread that ``COPY``s every 100 ms, and one transaction per task, each task
  ``--engine-us`` of busy work standing in for the engine), and Prefect's figure (timed inside
  the flow body, ``_prefect_workloads.py``) with its server on PostgreSQL (on SQLite where no
  database can be made for it; the JSON says which);
- ``empty_flow_ms``: the median of 200 calls of a flow with an empty body; target <= 2 ms;
- ``processes``: ``--processes`` processes running a flow of 1,000 tasks each at once,
  every one under a host name of its own: task runs stored (none may be lost) and
  task runs per second.

The machine's load average is reported: on a shared machine the figures move with it.
``--url`` points at a database (emptied first: give one for benchmarks only); without it, a
throwaway server is started as tests/postgres does (needs the ``postgresql`` package).

    python benchmarks/postgres.py [--url postgresql://...] [--tasks 5000] [--processes 8]
        [--repeat 3] [--prefect-python ../prefect-venv/bin/python | --prefect-python '']
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
_PREFECT_PYTHON = ROOT.parent / "prefect-venv" / "bin" / "python"

_WORKLOAD = textwrap.dedent(
    """
    import json, statistics, sys, time
    from wfkit import flow, task

    @task
    def step(x):
        return x

    @flow
    def sequential(n):
        for i in range(n):
            step(i)

    @flow
    def empty():
        pass

    kind, n = sys.argv[1], int(sys.argv[2])
    if kind == "sequential":
        sequential(10)  # warm: imports, the store's schema and connections
        start = time.perf_counter()
        sequential(n)
        print(json.dumps((time.perf_counter() - start) / n * 1e6))
    elif kind == "empty":
        empty()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            empty()
            times.append(time.perf_counter() - start)
        print(json.dumps(statistics.median(times) * 1e3))
    else:
        sequential(n)
    """
)


def _run(
    url: str, *args: str, host: str | None = None, level: str = "WARNING"
) -> subprocess.Popen[str]:
    """The workload in a fresh process; at WARNING (the default) a task run writes no
    console line and stores no log line, at INFO both (the console to /dev/null)."""
    env = {**os.environ, "WFKIT_STORE": url, "PYTHONPATH": str(ROOT / "src")}
    env["WFKIT_LOGGING_LEVEL"] = level
    if host:
        env["WFKIT_TEST_HOST"] = host
    return subprocess.Popen(
        [sys.executable, "-c", _WORKLOAD, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if level == "INFO" else None,
        text=True,
    )


def _figure(url: str, *args: str, level: str = "WARNING") -> float:
    out, _ = _run(url, *args, level=level).communicate()
    return float(json.loads(out))


def _plain(url: str, mode: str, tasks: int, engine_us: float) -> float:
    """Plain psycopg's µs per task (``_pg_plain.py``) on a database that has the schema."""
    out = subprocess.run(
        [sys.executable, str(HERE / "_pg_plain.py"), mode, str(tasks), str(engine_us)],
        env={**os.environ, "WFKIT_STORE": url},
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out))


def _median(samples: list[float], digits: int = 1) -> dict[str, Any]:
    return {
        "median": round(statistics.median(samples), digits),
        "samples": [round(x, digits) for x in samples],
    }


def _processes(url: str, count: int, tasks: int = 1000) -> dict[str, Any]:
    start = time.perf_counter()
    children = [_run(url, "many", str(tasks), host=f"bench-host-{i}") for i in range(count)]
    codes = [child.wait() for child in children]
    elapsed = time.perf_counter() - start
    sys.path.insert(0, str(ROOT / "src"))
    from wfkit.stores import open_store  # (after the path: this checkout's wfkit)

    with open_store(url, read_only=True) as reader:
        stored = reader.summary().task_runs.get("Completed", 0)
    return {
        "processes": count,
        "exit_codes_ok": all(code == 0 for code in codes),
        "task_runs_expected": count * tasks,
        "task_runs_stored": stored,
        "task_runs_per_second": round(stored / elapsed),
    }


def _empty_database(url: str) -> None:
    import psycopg  # (the postgres extra)

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def _prefect_database(url: str, server: Any) -> tuple[str | None, str]:
    """A fresh database for Prefect's server (its SQLAlchemy URL) and "postgresql", or None
    and why Prefect runs on SQLite."""
    import psycopg  # (the postgres extra)

    name = "wfkit_bench_prefect"
    try:
        if server is not None:
            made = server.create_database(name)
        else:  # a server of the caller's: its role may not create databases
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {name}")
            made = urlsplit(url)._replace(path=f"/{name}", query="").geturl()
    except psycopg.Error as exc:
        return None, f"sqlite (no database could be made for Prefect's server: {exc})"
    return made.replace("postgresql://", "postgresql+asyncpg://", 1), "postgresql"


def _prefect(python: str, database_url: str | None, why: str, tasks: int, repeat: int) -> Any:
    """Prefect's sequential task (µs per task, timed inside its flow body), its server on
    ``database_url`` (PostgreSQL) or, without one, on SQLite; None without Prefect."""
    sys.path.insert(0, str(HERE))
    from _common import parse_result  # (benchmarks/: the Prefect workers' helpers)

    with tempfile.TemporaryDirectory(prefix="wfkit-bench-prefect-") as home:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WFKIT_", "PREFECT_", "PYTHON"))
        }
        env["PREFECT_HOME"] = home
        if database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
        params = {"figures": ["sequential_task_sqlite"], "repeat": repeat, "warm_calls": 5}
        params["seq_n"] = tasks
        done = subprocess.run(
            [python, str(HERE / "_prefect_workloads.py"), "session", json.dumps(params)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    result = parse_result(done.stdout) or {"status": "error", "reason": done.stderr[-2000:]}
    figure = result.get("figures", {}).get("sequential_task_sqlite")
    if figure is None:
        return {"status": "error", "reason": result.get("reason"), "database": why}
    return {
        **_median(figure["samples"]),
        "database": why,
        "tasks": tasks,
        "verified": result.get("verified"),
        "method": figure["details"]["method"],
    }


def _sequential(
    url: str, sqlite: str, options: argparse.Namespace
) -> dict[str, Callable[[], float]]:
    tasks, engine = options.tasks, options.engine_us
    return {
        "wfkit_postgres": lambda: _figure(url, "sequential", str(tasks)),
        "wfkit_sqlite": lambda: _figure(sqlite, "sequential", str(tasks)),
        # (the default level: each task run also stores its "Finished in state" line)
        "wfkit_postgres_info": lambda: _figure(url, "sequential", str(tasks), level="INFO"),
        "wfkit_sqlite_info": lambda: _figure(sqlite, "sequential", str(tasks), level="INFO"),
        "plain_psycopg_copy_every_100ms": lambda: _plain(url, "copy", tasks, engine),
        # (hundreds of µs a task: fewer tasks)
        "plain_psycopg_transaction_per_task": lambda: _plain(
            url, "transaction", min(tasks, 1000), engine
        ),
    }


def _measure(url: str, options: argparse.Namespace, server: Any) -> dict[str, Any]:
    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory() as directory:
        sqlite = f"sqlite:///{directory}/bench.db"
        figures = _sequential(url, sqlite, options)
        samples: dict[str, list[float]] = {name: [] for name in figures}
        empty: dict[str, list[float]] = {"wfkit_postgres": [], "wfkit_sqlite": []}
        for _ in range(options.repeat):  # interleaved: a burst of load hits every figure
            _empty_database(url)
            for name, figure in figures.items():
                samples[name].append(figure())
            empty["wfkit_postgres"].append(_figure(url, "empty", "200"))
            empty["wfkit_sqlite"].append(_figure(sqlite, "empty", "200"))
    sequential: dict[str, Any] = {name: _median(xs) for name, xs in samples.items()}
    sequential |= {"target_postgres": 45, "plain_engine_us": options.engine_us}
    result = {
        "sequential_task_us": sequential,
        "empty_flow_ms": {
            **{name: _median(xs, 3) for name, xs in empty.items()},
            "target_postgres": 2,
        },
    }
    _empty_database(url)
    result["processes"] = _processes(url, options.processes)
    if options.prefect_python and Path(options.prefect_python).exists():
        database, why = _prefect_database(url, server)
        sequential["prefect"] = _prefect(
            options.prefect_python, database, why, min(options.tasks, 500), options.repeat
        )
    else:
        reason = f"no Prefect interpreter ({options.prefect_python or 'none given'})"
        sequential["prefect"] = {"status": "skipped", "reason": reason}
    load.append(os.getloadavg())
    result["load_average_1_5_15_min"] = {"start": load[0], "end": load[1]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine-us", type=float, default=13.0)
    parser.add_argument(
        "--prefect-python",
        default=str(_PREFECT_PYTHON) if _PREFECT_PYTHON.exists() else "",
        help="Prefect 3's interpreter ('' to leave Prefect out)",
    )
    options = parser.parse_args()
    server = None
    url = options.url
    if url is None:
        sys.path.insert(0, str(ROOT))
        from tests.postgres._server import PgServer, server_bin  # (a throwaway server)

        bin_dir = server_bin()
        if bin_dir is None:
            sys.exit("No PostgreSQL server binaries: apt-get install postgresql, or --url.")
        server = PgServer(bin_dir)
        server.start()
        url = server.create_database("wfkit_bench")
    try:
        print(json.dumps(_measure(url, options, server), indent=2))
    finally:
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    main()
